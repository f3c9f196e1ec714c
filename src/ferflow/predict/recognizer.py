"""The Python API: ``EmotionRecognizer`` finds faces and classifies their emotions in one call.

>>> from ferflow import EmotionRecognizer
>>> faces = EmotionRecognizer().predict("photo.jpg")        # doctest: +SKIP
>>> faces[0].emotion, faces[0].box, faces[0].probabilities  # doctest: +SKIP

Prediction's third layer, on the detection and crops of :mod:`.detection` and the classifier of
:mod:`.classifier` (videos: :mod:`.video_analysis`). The commands of ``ferflow predict`` are built on it: the photos
and videos they read go through the same detector, crops, classifier and tracker (:mod:`.photos`, :mod:`.video`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from ferflow import checkpoint as checkpoints
from ferflow.detection import DETECTORS, MARGIN, MIN_FACE, check_margin, find_faces
from ferflow.errors import FerflowError
from ferflow.faces import to_grayscale_array
from ferflow.inference import AUTO_TTA
from ferflow.predict.classifier import Predictor
from ferflow.predict.tracking import BoxT
from ferflow.predict.video_analysis import (
    DETECT_SIDE,
    REDETECT,
    Analysed,
    Sampler,
    analysed_frames,
    check_count,
    check_options,
    face_table,
    open_video,
    sampled_frames,
)

if TYPE_CHECKING:
    import pandas as pd

ImageLike = str | os.PathLike[str] | Image.Image | np.ndarray
"""What ``predict`` takes: a path, a PIL image, or a uint8 array (H×W gray, H×W×3 RGB, H×W×4 RGBA)."""


@dataclass
class Face:
    """One detected face: its box in the photo and the classifier's probabilities."""

    box: BoxT
    probabilities: dict[str, float]

    @property
    def emotion(self) -> str:
        """The most probable class."""
        return max(self.probabilities, key=self.probabilities.__getitem__)

    @property
    def confidence(self) -> float:
        """The probability of :attr:`emotion`."""
        return self.probabilities[self.emotion]


def load_photo(path: Path) -> Image.Image:
    """A photo with its EXIF orientation applied; FerflowError when it cannot be decoded."""
    try:
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise FerflowError(f"{path}: unreadable image ({exc})") from None


CHANNELS = ("rgb", "bgr")
"""The colour orders of a 3- or 4-channel array: ``rgb`` (Pillow's, the default) or ``bgr`` (OpenCV's: its frames)."""


def to_gray(image: ImageLike, channels: str = "rgb") -> np.ndarray:
    """Any accepted image as a 2-D uint8 grayscale array (a file's EXIF orientation applied); a 3- or 4-channel
    array's colours in ``channels`` order. An empty image, or a float image with NaN or infinite pixels, is
    refused."""
    if channels not in CHANNELS:
        raise FerflowError(f"channels {channels!r}: give 'rgb' or 'bgr' (OpenCV's order)")
    if isinstance(image, str | os.PathLike):
        gray = to_grayscale_array(load_photo(Path(image)))
    elif isinstance(image, Image.Image):
        if image.mode == "F" and not np.isfinite(np.asarray(image)).all():
            raise FerflowError(f"an image with NaN or infinite pixels ({image.width}×{image.height}, mode F)")
        gray = to_grayscale_array(image)
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))):
            raise FerflowError(
                f"an array of shape {image.shape} and dtype {image.dtype} is not an image: "
                "give uint8 H×W (gray), H×W×3 (RGB) or H×W×4 (RGBA)"
            )
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[..., 0]
        elif image.ndim == 3 and channels == "bgr":
            image = image[..., [2, 1, 0, 3][: image.shape[2]]]
        gray = to_grayscale_array(Image.fromarray(np.ascontiguousarray(image)))
    else:
        raise FerflowError(f"not an image: {type(image).__name__} (give a path, a PIL image or a uint8 numpy array)")
    if gray.size == 0:
        raise FerflowError(f"an empty image ({gray.shape[1]}×{gray.shape[0]} pixels)")
    return gray


class EmotionRecognizer:
    """Face detection and emotion classification with a ferflow model.

    ``checkpoint``: a ferflow checkpoint (``best.pt``) or its ONNX export (default: the model shipped with
    ferflow); ``device``: ``auto`` (CUDA, else MPS, else CPU), ``cpu``, ``cuda`` or ``mps`` (checkpoints only);
    ``tta``: test-time augmentation (``none``, ``flip``, ``flip-shift``, ``crops10``; ``auto``, the default: the
    views the checkpoint recommends, for the shipped model those its card measured, ten crops; for videos and
    cameras the fewest views its card measures within 0.5 points of the best, flip); ``detect=False`` takes
    every image as a face crop; ``detector``: ``haar`` (OpenCV's Haar cascade) or ``dlib`` (dlib's HOG detector,
    the ``dlib`` extra); ``margin`` (0 to 1) widens each face box by that fraction of its side on each side.
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike[str] | None = None,
        device: str = "auto",
        tta: str = AUTO_TTA,
        *,
        detect: bool = True,
        detector: str = "haar",
        margin: float = MARGIN,
        min_face: int = MIN_FACE,
        batch_size: int = 64,
        threads: int | None = None,
    ) -> None:
        for name, value in (("min_face", min_face), ("batch_size", batch_size), ("threads", threads)):
            if value is not None:
                check_count(name, value)
        if detector not in DETECTORS:
            raise FerflowError(f"detector {detector!r} is not one of {', '.join(DETECTORS)}")
        check_margin(margin)
        if checkpoint is not None and not str(checkpoint):
            raise FerflowError("checkpoint '': give a path, or None for the model shipped with ferflow")
        if threads is not None:
            torch.set_num_threads(threads)
            cv2.setNumThreads(threads)
        self.checkpoint = checkpoints.shipped() if checkpoint is None else Path(checkpoint)
        self.predictor = Predictor(self.checkpoint, threads, batch_size, device, tta)
        self.detector = DETECTORS[detector](min_face=min_face) if detect else None
        self.detector_kind, self.margin, self.min_face = detector, margin, min_face

    @property
    def classes(self) -> list[str]:
        """The class names, in the order of the probabilities."""
        return self.predictor.classes

    def find_faces(self, gray: np.ndarray) -> tuple[list[BoxT], list[np.ndarray]]:
        """Face boxes and crops of one grayscale image (without detection: the centre square)."""
        return find_faces(gray, self.detector, self.margin)

    def predict(self, image: ImageLike, channels: str = "rgb") -> list[Face]:
        """The faces of one image, left to right: box ``(x, y, w, h)``, emotion and the class probabilities.
        ``channels``: the colour order of a 3- or 4-channel array, ``rgb`` (Pillow's) or ``bgr`` (OpenCV's, as
        ``cv2.imread`` and video frames give it)."""
        boxes, crops = self.find_faces(to_gray(image, channels))
        return [Face(box, p) for box, p in zip(boxes, self.predictor(crops))]

    def predict_faces(self, crops: list[ImageLike], channels: str = "rgb") -> list[Face]:
        """One face per image that is already a face crop (its box: the centre square that is classified);
        ``channels`` as :meth:`predict` takes it."""
        if isinstance(crops, str | os.PathLike | Image.Image | np.ndarray):
            raise FerflowError(f"predict_faces takes a list of face crops, got one {type(crops).__name__}: [crop]")
        found = [find_faces(to_gray(crop, channels), None, 0.0) for crop in crops]
        probabilities = self.predictor([face for _, (face,) in found])
        return [Face(box, p) for ((box,), _), p in zip(found, probabilities)]

    def track(
        self, frames: Iterable[tuple[int, float, np.ndarray]], detect_side: int = DETECT_SIDE, redetect: int = REDETECT
    ) -> Iterator[Analysed]:
        """The faces of video frames ``(index, time in s, BGR frame)``, detected, classified and tracked
        (:mod:`ferflow.predict.video_analysis`): the whole frame, downscaled to ``detect_side`` pixels, is searched
        every ``redetect`` frames, only around the tracked faces in between."""
        detector = DETECTORS[self.detector_kind](min_face=self.min_face, max_side=detect_side)
        yield from analysed_frames(frames, detector, self.predictor, self.margin, redetect)

    def video(
        self,
        path: str | os.PathLike[str],
        fps: float | None = None,
        *,
        every: int | None = None,
        max_frames: int | None = None,
        detect_side: int = DETECT_SIDE,
        redetect: int = REDETECT,
        progress: bool = False,
    ) -> pd.DataFrame:
        """The per-frame table of a video: one row per face per analysed frame (``time_s, frame, face_id, x, y,
        w, h, emotion`` and the class probabilities); ``fps``: analysed frames per second of video (default:
        every frame); ``every``: analyse every ``every``-th frame instead; ``max_frames``: stop after that many
        frames; ``detect_side``, ``redetect``: as :meth:`track` takes them; ``progress``: a progress bar."""
        check_options(fps, every=every, max_frames=max_frames, detect_side=detect_side, redetect=redetect)
        file = Path(path)
        capture = open_video(file)
        try:
            total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
            with tqdm(total=total, desc=file.name, unit="frame", file=sys.stderr, disable=not progress) as bar:
                sampled = sampled_frames(capture, False, Sampler(every, fps), max_frames, bar)
                rows, analysed = [], 0
                for a in self.track(sampled, detect_side, redetect):
                    rows += a.rows()
                    analysed += 1
                if analysed == 0:  # the first frame read is always analysed
                    raise FerflowError(f"{file}: no frame could be read")
        finally:
            capture.release()
        return face_table(rows, self.classes)
