"""Predict emotions on ordinary photos (and, through :mod:`ferflow.predict.video`, on videos and cameras):
face detection, then the classifier of a checkpoint or of its ONNX export.

Each photo (any size, any Pillow-readable format, EXIF orientation applied) is turned into grayscale
with :func:`ferflow.faces.to_grayscale_array`, faces are found with OpenCV's frontal-face Haar
cascade (shipped inside ``opencv-python-headless`` 4.x; ``--detector dlib``: dlib's HOG frontal-face
detector, :class:`DlibDetector`, its boxes framed like the cascade's), and every face box is widened
by ``--margin`` of its side on each side (the cascade's box is about 80% of the FER2013/AffectNet framing, hence the
default 0.125), cropped with edge padding where it leaves the photo, and converted exactly like the
training images (:func:`~ferflow.faces.to_face48` → :func:`~ferflow.faces.to_model_input`).
``--no-detect`` treats every image as a face crop (centre square). Boxes are ``[x, y, w, h]`` in
pixels of the (orientation-corrected) photo.

The classifier (``--checkpoint``) is a ferflow checkpoint run in PyTorch, or, for a ``.onnx`` file, an
export of ``ferflow export-onnx`` or ``ferflow quantize`` run in ONNX Runtime (its metadata carries the
classes and input format). Faces are classified in batches of ``--batch-size`` gathered across photos,
and the run ends with its throughput in images/s. A video file or ``--camera`` is handed to
:func:`ferflow.predict.video.run_video`.

Exit status: 0, also when a photo has no face (reported, empty result) or a file cannot be read
(reported, skipped); with ``--strict`` either makes it 1. A checkpoint that is not a ferflow
checkpoint, or a pickle that would run code, is refused by :func:`ferflow.checkpoint.read`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import onnxruntime as ort
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import nn
from tqdm import tqdm

from ferflow import checkpoint
from ferflow.cli import missing_extra
from ferflow.device import PREFERENCES, select_device
from ferflow.errors import FerflowError
from ferflow.faces import IMAGE_SUFFIXES, NORMALIZATION, VIDEO_SUFFIXES, WIDE_MODES, to_face48, to_grayscale_array
from ferflow.inference import AUTO_TTA, TTA_CHOICES, fuse_batchnorm, predict_probabilities, resolve_tta
from ferflow.ort import INPUT, OUTPUT, input_shape, ort_session, read_metadata
from ferflow.predict.tracking import BoxT, iou
from ferflow.storage import atomic_path

if TYPE_CHECKING:
    from ferflow.predict.recognizer import EmotionRecognizer

CASCADE = "haarcascade_frontalface_default.xml"
DETECT_MAX_SIDE = 1600  # larger photos are downscaled for detection only (boxes are mapped back)
NEAR_SIDE = 40  # a tracked face's side in pixels when it is searched for again near its last box
DETECT_SIDE = 320  # video frames are downscaled to this longest side for detection over the whole frame
REDETECT = 5  # a video's whole frame is searched every REDETECT analysed frames, only near tracked faces between
DLIB_SIDE = 80  # the smallest face side in pixels that dlib's HOG detector finds without upsampling
DLIB_GROW, DLIB_RAISE = 1.15, 0.08  # dlib's box to the cascade's framing (AffectNet faces): side × 1.15, centre
# raised 0.08 of dlib's side (the cascade's box is 1.10-1.18 times as large and centred higher, medians)


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


@dataclass
class PhotoResult:
    """What predict found in one file; ``error`` is set (and ``faces`` empty) when it was unreadable."""

    path: Path
    size: tuple[int, int] | None = None
    faces: list[Face] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "width": self.size[0] if self.size else None,
            "height": self.size[1] if self.size else None,
            "error": self.error,
            "faces": [
                {
                    "box": list(f.box),
                    "emotion": f.emotion,
                    "confidence": f.confidence,
                    "probabilities": f.probabilities,
                }
                for f in self.faces
            ],
        }


def find_images(inputs: list[str]) -> list[tuple[Path, Path]]:
    """``(file, path relative to its input argument)`` for every file argument and every image
    (by extension) under every folder argument, recursively, in sorted order."""
    found: list[tuple[Path, Path]] = []
    for arg in inputs:
        path = Path(arg)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise FerflowError(f"{arg}: no image in this folder ({', '.join(sorted(IMAGE_SUFFIXES))})")
            found += [(p, p.relative_to(path)) for p in files]
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            raise FerflowError(f"{arg}: no such file or folder")
    return found


def load_photo(path: Path) -> Image.Image:
    """A photo with its EXIF orientation applied; FerflowError when it cannot be decoded."""
    try:
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise FerflowError(f"{path}: unreadable image ({exc})") from None


def sort_boxes(boxes: list[BoxT]) -> list[BoxT]:
    """Face boxes sorted left to right, then top to bottom."""
    return sorted(boxes, key=lambda b: (b[0], b[1]))


class Detector(ABC):
    """A face detector on grayscale arrays: over the whole image (``__call__``), or only around the faces of
    the previous video frame (:meth:`near`)."""

    name: str  # how ``ferflow predict --json`` names it

    @abstractmethod
    def __call__(self, gray: np.ndarray) -> list[BoxT]:
        """Face boxes ``(x, y, w, h)`` sorted left to right, then top to bottom."""

    @abstractmethod
    def in_window(self, window: np.ndarray, side: int) -> list[BoxT]:
        """Faces 0.7 to 1.4 times ``side`` pixels large in ``window`` (boxes in its pixels)."""

    def near(self, gray: np.ndarray, boxes: list[BoxT]) -> list[BoxT]:
        """Faces 0.7 to 1.4 times as large as each of ``boxes`` (faces seen in the previous video frame),
        searched in a window widened by half the box's side on each side; duplicates (found in two windows)
        are merged. Sorted like :meth:`__call__`."""
        found: list[BoxT] = []
        for x, y, w, h in boxes:
            x0, y0 = max(0, x - w // 2), max(0, y - h // 2)
            window = gray[y0 : y + h + h // 2, x0 : x + w + w // 2]
            for bx, by, bw, bh in self.in_window(window, max(w, h)):
                box = (bx + x0, by + y0, bw, bh)
                if all(iou(box, other) < 0.5 for other in found):
                    found.append(box)
        return sort_boxes(found)


class FaceDetector(Detector):
    """OpenCV's frontal-face Haar cascade on a grayscale array, downscaled to at most ``max_side`` pixels."""

    name = CASCADE

    def __init__(
        self, min_face: int = 30, scale_factor: float = 1.1, min_neighbors: int = 5, max_side: int = DETECT_MAX_SIDE
    ) -> None:
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
        if self.cascade.empty():
            raise FerflowError(
                f"{cv2.data.haarcascades + CASCADE}: OpenCV's Haar cascade is missing "
                "(opencv-python-headless 4.x ships it)"
            )
        self.min_face, self.scale_factor, self.min_neighbors, self.max_side = (
            min_face,
            scale_factor,
            min_neighbors,
            max_side,
        )

    def __call__(self, gray: np.ndarray) -> list[BoxT]:
        scale = min(1.0, self.max_side / max(gray.shape))
        small = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        side = max(1, round(self.min_face * scale))
        boxes = self.cascade.detectMultiScale(
            small, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(side, side)
        )
        found = [tuple(int(round(v / scale)) for v in box) for box in np.asarray(boxes).reshape(-1, 4)]
        return sort_boxes(found)  # type: ignore[arg-type]

    def in_window(self, window: np.ndarray, side: int) -> list[BoxT]:
        """Searched downscaled so that the face spans about ``NEAR_SIDE`` pixels."""
        scale = min(1.0, NEAR_SIDE / side)
        if scale < 1.0:
            window = cv2.resize(window, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        small, large = max(24, round(0.7 * side * scale)), round(1.4 * side * scale) + 1
        hits = self.cascade.detectMultiScale(
            window,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(small, small),
            maxSize=(large, large),
        )
        return [
            (round(bx / scale), round(by / scale), round(bw / scale), round(bh / scale))
            for bx, by, bw, bh in np.asarray(hits).reshape(-1, 4)
        ]


class DlibDetector(Detector):
    """dlib's HOG frontal-face detector (``dlib.get_frontal_face_detector()``, no model file; the ``dlib`` extra).

    It finds faces from about ``DLIB_SIDE`` pixels up, so the image is resized once by ``DLIB_SIDE / min_face``
    (upsampled when ``min_face`` is smaller), but to at most ``max_side`` pixels (large photos and video frames
    are downscaled, as for the cascade; faces below ``DLIB_SIDE`` pixels of the resized image are then missed).
    One resize by that factor replaces dlib's own upsampling, which doubles the image at each step. Boxes are
    clipped to the image and converted to the cascade's framing (``DLIB_GROW``, ``DLIB_RAISE``), so that
    ``margin`` crops the same face region with either detector.
    """

    name = "dlib.get_frontal_face_detector"

    def __init__(self, min_face: int = 30, max_side: int = DETECT_MAX_SIDE) -> None:
        try:
            import dlib
        except ModuleNotFoundError:
            raise FerflowError(str(missing_extra("dlib"))) from None
        self.hog = dlib.get_frontal_face_detector()
        self.min_face, self.max_side = min_face, max_side

    def __call__(self, gray: np.ndarray) -> list[BoxT]:
        return sort_boxes(self.detect(gray, min(DLIB_SIDE / self.min_face, self.max_side / max(gray.shape))))

    def in_window(self, window: np.ndarray, side: int) -> list[BoxT]:
        """Searched resized so that a face of 0.7 ``side`` spans ``DLIB_SIDE`` pixels."""
        return [b for b in self.detect(window, DLIB_SIDE / (0.7 * side)) if 0.7 * side <= max(b[2:]) <= 1.4 * side]

    def detect(self, gray: np.ndarray, scale: float) -> list[BoxT]:
        """The faces found in ``gray`` resized by ``scale``, as boxes in ``gray``'s pixels."""
        height, width = gray.shape
        if scale != 1.0:
            interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=interpolation)
        boxes: list[BoxT] = []
        for rect in self.hog(np.ascontiguousarray(gray), 0):  # (left, top, right, bottom), inclusive, maybe outside
            side = rect.width() * DLIB_GROW / scale
            cx = (rect.left() + rect.right() + 1) / 2 / scale
            cy = (rect.top() + rect.bottom() + 1) / 2 / scale - DLIB_RAISE * rect.width() / scale
            x0, y0 = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
            x1, y1 = min(width, round(cx + side / 2)), min(height, round(cy + side / 2))
            if x1 > x0 and y1 > y0:
                boxes.append((x0, y0, x1 - x0, y1 - y0))
        return boxes


DETECTORS: dict[str, type[Detector]] = {"haar": FaceDetector, "dlib": DlibDetector}
"""``--detector`` choices: each class takes ``min_face`` and ``max_side``."""


def crop_face(gray: np.ndarray, box: BoxT, margin: float) -> np.ndarray:
    """The square around ``box`` widened by ``margin`` of its side on each side, edge-padded outside the photo."""
    x, y, w, h = box
    side = round(max(w, h) * (1 + 2 * margin))
    left, top = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
    pad = max(0, -left, -top, left + side - gray.shape[1], top + side - gray.shape[0])
    padded = np.pad(gray, pad, mode="edge") if pad else gray
    return padded[top + pad : top + pad + side, left + pad : left + pad + side]


class OrtModel:
    """An ONNX Runtime session called like a PyTorch model: a float batch in, logits out. A batch of another image
    size than the export's input (a ``crops10`` view) is refused in one line."""

    def __init__(self, session: ort.InferenceSession, path: str | Path) -> None:
        self.session, self.path = session, path
        self.shape = input_shape(session, path)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.shape:
            raise FerflowError(
                f"{self.path}: the ONNX model takes {self.shape} inputs, the test-time views are {tuple(x.shape[1:])}: "
                "use its checkpoint for this --tta"
            )
        return torch.from_numpy(self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(x.numpy())})[0])


class OnDevice(nn.Module):
    """A model on ``device`` fed CPU batches: inputs moved there, outputs back to the CPU."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        super().__init__()
        self.model, self.device = model.to(device), device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(self.device)).cpu()


class Predictor:
    """A classifier with its input conversion: a ferflow checkpoint (PyTorch, batch norm folded, on ``device``)
    or, for a ``.onnx`` path, its export (ONNX Runtime, CPU). ``__call__`` maps face crops to probabilities,
    averaged over the test-time views of ``tta`` (:data:`ferflow.inference.TTA_VIEWS`; ``auto``: the views the
    checkpoint recommends, see :func:`ferflow.inference.resolve_tta`)."""

    def __init__(
        self,
        model_path: str | Path,
        threads: int | None = None,
        batch_size: int = 64,
        device: str = "auto",
        tta: str = AUTO_TTA,
    ) -> None:
        self.model: nn.Module | OrtModel
        if Path(model_path).suffix.lower() == ".onnx":
            if device not in ("auto", "cpu"):
                raise FerflowError(f"{model_path}: ONNX models run on the CPU; device {device!r} is for checkpoints")
            session = ort_session(model_path, threads or 0)  # 0: ONNX Runtime's default
            fields = read_metadata(session, model_path)
            fields["arch_kwargs"] = {"in_channels": fields["in_channels"]}
            self.model, self.device = OrtModel(session, model_path), torch.device("cpu")
        else:
            model, fields = checkpoint.load_model(model_path)
            fields = {**fields, "in_channels": fields["arch_kwargs"]["in_channels"]}
            self.device = select_device(device)
            self.model = OnDevice(fuse_batchnorm(model), self.device)
        if fields["normalization"] != NORMALIZATION:
            raise FerflowError(
                f"{model_path}: normalization {fields['normalization']} differs from ferflow's {NORMALIZATION}"
            )
        self.fields = fields
        self.classes: list[str] = list(fields["classes"])
        self.image_size: int = int(fields["image_size"])
        self.in_channels: int = int(fields["in_channels"])
        self.arch: str = fields["arch"]
        self.batch_size, self.tta = batch_size, resolve_tta(tta, fields)

    def probabilities(self, faces: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, classes)`` of uint8 ``(N, size, size)`` faces, ``batch_size`` at a time."""
        return predict_probabilities(self.model, self.fields, faces, self.batch_size, self.tta)  # type: ignore[arg-type]

    def crop_probabilities(self, crops: list[np.ndarray]) -> np.ndarray:
        """Class probabilities ``(N, classes)`` of grayscale face crops of any size."""
        if not crops:
            return np.zeros((0, len(self.classes)), np.float32)
        return self.probabilities(np.stack([to_face48(Image.fromarray(c), self.image_size) for c in crops]))

    def __call__(self, crops: list[np.ndarray]) -> list[dict[str, float]]:
        return [
            {name: round(float(p), 6) for name, p in zip(self.classes, row)} for row in self.crop_probabilities(crops)
        ]


def find_faces(gray: np.ndarray, detector: Detector | None, margin: float) -> tuple[list[BoxT], list[np.ndarray]]:
    """Face boxes and crops of one grayscale photo (``detector=None``: the whole photo is one face crop)."""
    if detector is None:
        side = min(gray.shape)
        return [((gray.shape[1] - side) // 2, (gray.shape[0] - side) // 2, side, side)], [gray]
    boxes = detector(gray)
    return boxes, [crop_face(gray, b, margin) for b in boxes]


def predict_photos(
    photos: list[tuple[Path, Path]], recognizer: EmotionRecognizer, keep_images: bool
) -> Iterator[tuple[PhotoResult, Path, Image.Image | None]]:
    """``(result, relative path, photo if keep_images)`` of every photo, in order. Faces are gathered
    across photos and classified together once a batch of faces (or photos) is waiting."""
    predictor = recognizer.predictor
    pending: list[tuple[PhotoResult, Path, Image.Image | None, list[BoxT], list[np.ndarray]]] = []

    def flush() -> Iterator[tuple[PhotoResult, Path, Image.Image | None]]:
        probabilities = iter(predictor([crop for *_, crops in pending for crop in crops]))
        for result, rel, image, boxes, _ in pending:
            result.faces = [Face(box, next(probabilities)) for box in boxes]
            yield result, rel, image
        pending.clear()

    for path, rel in photos:
        result = PhotoResult(path)
        try:
            image = load_photo(path)
        except FerflowError as exc:
            result.error = str(exc)
            print(f"ferflow predict: warning: {exc}; skipped", file=sys.stderr)
            pending.append((result, rel, None, [], []))
        else:
            result.size = image.size
            boxes, crops = recognizer.find_faces(to_grayscale_array(image))
            pending.append((result, rel, image if keep_images else None, boxes, crops))
        if len(pending) >= predictor.batch_size or sum(len(p[4]) for p in pending) >= predictor.batch_size:
            yield from flush()
    yield from flush()


def draw_faces(canvas: np.ndarray, boxes: list[BoxT], labels: list[str]) -> None:
    """Draw each box with its label on a filled tag above it (green; in place on an RGB or BGR array)."""
    thickness = max(2, round(max(canvas.shape[:2]) / 400))
    font_scale = max(0.5, max(canvas.shape[:2]) / 1200)
    for (x, y, w, h), label in zip(boxes, labels):
        cv2.rectangle(canvas, (x, y), (x + w, y + h), (0, 255, 0), thickness)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        top = y - th - base - thickness if y - th - base - thickness >= 0 else y + h
        cv2.rectangle(canvas, (x, top), (x + tw, top + th + base + thickness), (0, 255, 0), -1)
        cv2.putText(
            canvas,
            label,
            (x, top + th + thickness // 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (0, 0, 0),
            max(1, thickness // 2),
            cv2.LINE_AA,
        )


def annotate(image: Image.Image, faces: list[Face], out_path: Path) -> None:
    """Write ``image`` with each face's box and top emotion drawn (atomically)."""
    canvas = np.array(image.convert("RGB")) if image.mode not in WIDE_MODES else to_grayscale_array(image)
    canvas = np.repeat(canvas[..., None], 3, axis=2) if canvas.ndim == 2 else canvas
    draw_faces(canvas, [f.box for f in faces], [f"{f.emotion} {f.confidence:.2f}" for f in faces])
    fmt = Image.registered_extensions()[out_path.suffix.lower()]
    with atomic_path(out_path) as tmp:
        Image.fromarray(canvas).save(tmp, format=fmt)


def annotation_path(out_dir: Path, relative: Path) -> Path:
    """Where the annotated copy of a photo goes: same relative path; formats Pillow cannot write as .png."""
    writable = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
    return out_dir / (relative if relative.suffix.lower() in writable else relative.with_name(relative.name + ".png"))


def format_result(result: PhotoResult, classes: list[str]) -> list[str]:
    """The terminal table rows of one photo."""
    if result.error:
        return [f"{result.path}: skipped (unreadable)"]
    if not result.faces:
        return [f"{result.path}: no face found"]
    lines = [
        f"{result.path}: {len(result.faces)} face(s)",
        f"  {'#':>2}  {'box (x, y, w, h)':<22}  {'emotion':<8}  " + " ".join(f"{c:>8}" for c in classes),
    ]
    for i, face in enumerate(result.faces, 1):
        box = "{}, {}, {}, {}".format(*face.box)
        lines.append(
            f"  {i:>2}  {box:<22}  {face.emotion:<8}  " + " ".join(f"{face.probabilities[c]:>8.3f}" for c in classes)
        )
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="IMAGE_FOLDER_OR_VIDEO",
        help="photos, folders searched recursively for images, or one video file",
    )
    parser.add_argument(
        "--checkpoint",
        help="a ferflow checkpoint (best.pt) or its ONNX export (.onnx) (default: the model shipped with ferflow)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table (photos)")
    parser.add_argument(
        "--annotate",
        metavar="OUT",
        help="photos: write each with boxes and labels drawn into this folder; video: the annotated video (.mp4, .avi)",
    )
    parser.add_argument(
        "--no-detect", action="store_true", help="every image is already a face crop: skip detection (photos)"
    )
    parser.add_argument(
        "--detector",
        choices=list(DETECTORS),
        default="haar",
        help="face detector: OpenCV's Haar cascade, or dlib's HOG detector (the 'dlib' extra: finds more, slower)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a photo has no face or cannot be read")
    parser.add_argument(
        "--margin", type=float, default=0.125, help="widen each face box by this fraction of its side on each side"
    )
    parser.add_argument("--min-face", type=int, default=30, metavar="N", help="smallest face side in pixels to detect")
    parser.add_argument("--batch-size", type=int, default=64, help="faces classified together")
    parser.add_argument("--threads", type=int, help="CPU threads of PyTorch, ONNX Runtime and OpenCV (default: theirs)")
    parser.add_argument(
        "--device", choices=PREFERENCES, default="auto", help="where a checkpoint runs (ONNX models: the CPU)"
    )
    parser.add_argument(
        "--tta",
        choices=TTA_CHOICES,
        default=AUTO_TTA,
        help="test-time augmentation: mean over these views (auto: the checkpoint's recommended views, else none)",
    )
    video = parser.add_argument_group("video and camera")
    video.add_argument("--camera", type=int, metavar="INDEX", help="read frames from this camera instead of a file")
    sampling = video.add_mutually_exclusive_group()
    sampling.add_argument("--every", type=int, metavar="N", help="classify every N-th frame (default: every frame)")
    sampling.add_argument("--fps", type=float, help="classify this many frames per second of video")
    video.add_argument("--csv", help="the per-face CSV to write (default: <video name>.emotions.csv here)")
    video.add_argument(
        "--plot", help="the PNG of each face's probabilities over time (default: <video name>.emotions.png here)"
    )
    video.add_argument(
        "--detect-side",
        type=int,
        default=DETECT_SIDE,
        metavar="PX",
        help="frames are downscaled to this longest side for detection over the whole frame "
        "(dlib finds faces from about 80 px of this size)",
    )
    video.add_argument(
        "--redetect",
        type=int,
        default=REDETECT,
        metavar="N",
        help="search the whole frame every N analysed frames, and only around the tracked faces in "
        "between (1: always the whole frame)",
    )
    video.add_argument(
        "--max-frames", type=int, metavar="N", help="stop after N frames (a camera runs until Ctrl+C otherwise)"
    )


def check_options(fps: float | None, **counts: int | None) -> None:
    """A one-line FerflowError for ``fps`` <= 0 or a count (``every``, ``redetect``, ...) below 1."""
    if fps is not None and fps <= 0:
        raise FerflowError(f"--fps must be > 0, got {fps}")
    for name, value in counts.items():
        if value is not None and value < 1:
            raise FerflowError(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def is_video(path: str) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def run(args: argparse.Namespace) -> int:
    from ferflow.predict.recognizer import EmotionRecognizer  # the Python API, which builds on this module

    check_options(args.fps, every=args.every, detect_side=args.detect_side, redetect=args.redetect)
    check_options(None, max_frames=args.max_frames)
    if not args.inputs and args.camera is None:
        raise FerflowError("no input: give photos, folders, a video file or --camera")
    recognizer = EmotionRecognizer(
        args.checkpoint,
        args.device,
        args.tta,
        detect=not args.no_detect,
        detector=args.detector,
        margin=args.margin,
        min_face=args.min_face,
        batch_size=args.batch_size,
        threads=args.threads,
    )
    if args.camera is not None or any(is_video(i) for i in args.inputs):
        from ferflow.predict.video import run_video  # ferflow.predict.video builds on this module

        return run_video(args, recognizer)
    photos = find_images(args.inputs)
    out_dir = Path(args.annotate) if args.annotate else None
    if out_dir is not None:
        targets = [annotation_path(out_dir, rel) for _, rel in photos]
        clash = next((t for t in targets if targets.count(t) > 1), None)
        if clash is not None:
            raise FerflowError(f"{clash}: several inputs would be annotated to the same file; annotate them separately")
    predictor = recognizer.predictor
    results: list[PhotoResult] = []
    began = time.perf_counter()
    progress = tqdm(total=len(photos), desc="predict", unit="photo", file=sys.stderr, disable=len(photos) < 2)
    for result, rel, image in predict_photos(photos, recognizer, keep_images=out_dir is not None):
        if out_dir is not None and image is not None:
            annotate(image, result.faces, annotation_path(out_dir, rel))
        results.append(result)
        if not args.json:
            tqdm.write("\n".join(format_result(result, predictor.classes)), file=sys.stdout)
        progress.update()
    progress.close()
    seconds = time.perf_counter() - began
    if args.json:
        doc = {
            "checkpoint": str(recognizer.checkpoint),
            "arch": predictor.arch,
            "classes": predictor.classes,
            "detector": None if recognizer.detector is None else recognizer.detector.name,
            "margin": args.margin,
            "images": [r.as_dict() for r in results],
        }
        print(json.dumps(doc, indent=2))
    unreadable = sum(r.error is not None for r in results)
    faceless = sum(r.error is None and not r.faces for r in results)
    n_faces = sum(len(r.faces) for r in results)
    print(
        f"ferflow predict: {n_faces} face(s) in {len(results)} file(s); {faceless} without a face, "
        f"{unreadable} unreadable; {seconds:.2f} s, {len(results) / seconds:.1f} images/s",
        file=sys.stderr,
    )
    return 1 if args.strict and (faceless or unreadable) else 0
