"""Rules of workflow/rules/acquire.smk: ``download`` (:mod:`ferflow.acquire.download`)."""
