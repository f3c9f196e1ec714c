"""Rules of workflow/rules/train.smk: ``train`` (:mod:`.trainer`, on :mod:`.engine` with :mod:`.settings`,
:mod:`.losses` and :mod:`.mixing`) and ``select-final`` (:mod:`.select`);
``ferflow bench`` (:mod:`.bench`) times the engine."""
