"""Rules of workflow/rules/report.smk: ``plot-run`` and ``plot-study`` (:mod:`.figures`), ``tables`` (:mod:`.tables`)
and ``report`` (:mod:`.html`)."""
