"""Rules of workflow/rules/deploy.smk: ``export-onnx`` (:mod:`.export`), ``quantize`` (:mod:`.quantize`) and
``latency`` (:mod:`.latency`)."""
