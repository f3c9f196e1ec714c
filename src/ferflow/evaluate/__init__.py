"""Rules of workflow/rules/evaluate.smk: ``evaluate`` (:mod:`.scoring`), ``embed`` (:mod:`.embed`) and
``deploy-seed`` (:mod:`.deploy_seed`)."""
