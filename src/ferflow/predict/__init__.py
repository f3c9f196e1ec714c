"""``ferflow predict`` (no rule: the user's command): photos and folders (:mod:`.photos`), videos and cameras
(:mod:`.video`, with the face tracker of :mod:`.tracking`)."""
