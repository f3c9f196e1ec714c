"""Rules of workflow/rules/preprocess.smk: ``affectnet`` (:mod:`.affectnet`), ``balance`` (:mod:`.balance`) and
``rgb`` (:mod:`.rgb`); :mod:`.stages` holds what the data stages share."""
