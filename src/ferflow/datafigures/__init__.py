"""Rules of workflow/rules/datafigures.smk: ``plot-data`` (:mod:`.plots`) and ``tsne-raw`` (:mod:`.tsne_raw`)."""
