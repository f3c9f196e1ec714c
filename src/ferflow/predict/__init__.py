"""``ferflow predict`` (no rule: the user's command) and the Python API, in layers, each on those below it:

1. face detection and cropping (:mod:`.detection`, with the box tracker of :mod:`.tracking`);
2. classification of face crops in PyTorch or ONNX Runtime (:mod:`.classifier`);
3. the Python API, :class:`~.recognizer.EmotionRecognizer` (:mod:`.recognizer`; videos: :mod:`.video_analysis`);
4. the photo and video commands (:mod:`.photos`, :mod:`.video`, drawing with :mod:`.drawing`);

and at the top, the arguments of ``ferflow predict`` and the dispatch of its inputs (:mod:`.command`).
``ferflow summarize-videos`` (:mod:`.summary`) reads the video command's CSVs.
"""
