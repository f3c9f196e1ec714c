"""Faces through a video's frames, on the first two layers: sampling, detection, classification and tracking.

Every frame is grabbed; a frame is sampled (decoded into pixels and analysed) every ``every`` frames, or ``fps``
times per second of video time (for a camera, wall-clock time since the start). A sampled frame is converted to
grayscale and faces are found with the detector: over the whole frame, downscaled to ``detect_side`` pixels (boxes
mapped back), every ``redetect`` analysed frames and whenever no face is tracked or a tracked face was missed; in
between only around the faces of the previous analysed frame (:meth:`ferflow.detection.Detector.near`), a
fraction of the cost. All faces of the frame are classified in one batch, and
:class:`ferflow.predict.tracking.IouTracker` keeps each face's id while its boxes overlap from one analysed frame to
the next.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from tqdm import tqdm

from ferflow.detection import Detector, crop_face
from ferflow.errors import FerflowError
from ferflow.predict.classifier import Predictor
from ferflow.predict.tracking import BoxT, IouTracker

if TYPE_CHECKING:
    import pandas as pd

DETECT_SIDE = 320  # video frames are downscaled to this longest side for detection over the whole frame
REDETECT = 5  # a video's whole frame is searched every REDETECT analysed frames, only near tracked faces between


MIN_DETECT_SIDE = 80  # a frame downscaled further holds no face either detector finds (dlib's smallest is 80 px)


def check_options(fps: float | None, detect_side: int | None = None, **counts: int | None) -> None:
    """A one-line FerflowError for an ``fps`` that is not a finite number > 0 (NaN or infinity would analyse every
    frame or loop forever), a ``detect_side`` below :data:`MIN_DETECT_SIDE`, or a count (``every``, ``redetect``,
    ...) that is not an integer >= 1; None is the default. The CLI and the Python API check alike."""
    if fps is not None and not (isinstance(fps, int | float) and not isinstance(fps, bool) and 0 < fps < math.inf):
        raise FerflowError(f"fps must be a finite number > 0, got {fps!r}")
    for name, value, low in [("detect_side", detect_side, MIN_DETECT_SIDE), *((n, v, 1) for n, v in counts.items())]:
        if value is not None:
            check_count(name, value, low)


def check_count(name: str, value: object, low: int = 1) -> None:
    """A one-line FerflowError unless ``value`` is an integer >= ``low`` (2.5, True or "3" are refused)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise FerflowError(f"{name} must be an integer >= {low}, got {value!r}")


@dataclass
class FaceRow:
    """One face in one sampled frame."""

    time_s: float
    frame: int
    face_id: int
    box: BoxT
    probabilities: np.ndarray


class Sampler:
    """Decides which frames are analysed: every ``every``-th, or ``fps`` per second of video time."""

    def __init__(self, every: int | None, fps: float | None) -> None:
        self.every, self.fps = every or 1, fps
        self.next_time = 0.0

    def __call__(self, index: int, time_s: float) -> bool:
        if self.fps is None:
            return index % self.every == 0
        if time_s + 1e-9 < self.next_time:
            return False
        self.next_time = (math.floor((time_s + 1e-9) * self.fps) + 1) / self.fps  # the next slot after this frame
        return True


def open_video(path: Path) -> cv2.VideoCapture:
    """The opened capture of a video file; FerflowError when it is missing or OpenCV cannot open it."""
    if not path.is_file():
        raise FerflowError(f"{path}: no such file or folder")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise FerflowError(f"{path}: OpenCV cannot open it")
    return capture


def sampled_frames(
    capture: cv2.VideoCapture, camera: bool, sampler: Sampler, max_frames: int | None, progress: tqdm
) -> Iterator[tuple[int, float, np.ndarray]]:
    """``(frame index, time in s, BGR frame)`` of each sampled frame; the others are only grabbed."""
    rate = capture.get(cv2.CAP_PROP_FPS)
    began = time.monotonic()
    index = 0
    while max_frames is None or index < max_frames:
        if not capture.grab():
            return
        if camera:
            time_s = time.monotonic() - began
        else:
            time_s = index / rate if rate > 0 else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
        if sampler(index, time_s):
            ok, frame = capture.retrieve()
            if not ok:
                return
            yield index, time_s, frame
        progress.update()
        index += 1


@dataclass
class Analysed:
    """One analysed frame: its faces' boxes, track ids and class probabilities ``(faces, classes)``."""

    index: int
    time_s: float
    frame: np.ndarray
    boxes: list[BoxT]
    ids: list[int]
    probabilities: np.ndarray

    def rows(self) -> list[FaceRow]:
        return [FaceRow(self.time_s, self.index, i, b, p) for i, b, p in zip(self.ids, self.boxes, self.probabilities)]

    def labels(self, classes: list[str]) -> list[str]:
        """What the annotated video draws above each face: ``#<id> <emotion> <probability>``."""
        return [f"#{i} {classes[int(p.argmax())]} {p.max():.2f}" for i, p in zip(self.ids, self.probabilities)]


def analysed_frames(
    frames: Iterable[tuple[int, float, np.ndarray]],
    detector: Detector,
    predictor: Predictor,
    margin: float,
    redetect: int,
) -> Iterator[Analysed]:
    """Detect, classify and track the faces of every sampled frame ``(index, time in s, BGR frame)`` (see the module
    docstring): ``detector`` searches the whole frame every ``redetect`` frames, crops are widened by ``margin``."""
    tracker = IouTracker()
    for n, (index, time_s, frame) in enumerate(frames):
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        tracked = tracker.tracks
        if n % redetect == 0 or not tracked or any(t.missed for t in tracked):
            boxes = detector(gray)
        else:
            boxes = detector.near(gray, [t.box for t in tracked])
        probs = predictor.crop_probabilities([crop_face(gray, b, margin) for b in boxes], video=True)
        yield Analysed(index, time_s, frame, boxes, tracker.update(boxes), probs)


def face_table(rows: list[FaceRow], classes: list[str]) -> pd.DataFrame:
    """The face rows as a table: ``time_s, frame, face_id, x, y, w, h, emotion`` and each class's probability."""
    import pandas as pd

    columns = ["time_s", "frame", "face_id", "x", "y", "w", "h"]
    frame = pd.DataFrame([(r.time_s, r.frame, r.face_id, *r.box) for r in rows], columns=columns)
    probabilities = np.stack([r.probabilities for r in rows]) if rows else np.zeros((0, len(classes)), np.float32)
    frame["emotion"] = [classes[k] for k in probabilities.argmax(axis=1)]
    for k, name in enumerate(classes):
        frame[name] = probabilities[:, k]
    return frame
