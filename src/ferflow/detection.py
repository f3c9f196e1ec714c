"""Face detection and cropping on grayscale arrays: prediction's first layer, and the crops of ``ferflow evaluate
--detect`` (so that a score is what a user of ``predict`` gets).

Faces are found with OpenCV's frontal-face Haar cascade (shipped inside ``opencv-python-headless`` 4.x;
``detector="dlib"``: dlib's HOG frontal-face detector, :class:`DlibDetector`, its boxes framed like the cascade's),
and every face box is widened by ``margin`` of its side on each side (default 0: the cascade's own box, chosen on the
AffectNet sample's even ids, where the shipped model's mean recall falls as the margin grows: 24.7 / 19.8 / 18.0 /
15.9 % at margins 0 / 0.125 / 0.25 / 0.4, docs/faces-from-elsewhere.md) and cropped with edge padding where it leaves
the photo. Boxes are ``(x, y, w, h)`` in pixels of the (orientation-corrected) photo.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import cv2
import numpy as np

from ferflow.cli import missing_extra
from ferflow.errors import FerflowError

BoxT = tuple[int, int, int, int]
"""A face box ``(x, y, w, h)`` in pixels."""
MARGIN = 0.0
"""The default widening of a face box, a fraction of its side on each side (see the module docstring)."""
MAX_MARGIN = 1.0  # a face box widened further crops mostly background, and the crop grows with its square
MIN_FACE = 30
"""The default smallest face side, in pixels, that the detectors look for."""
CASCADE = "haarcascade_frontalface_default.xml"
DETECT_MAX_SIDE = 1600  # larger photos are downscaled for detection only (boxes are mapped back)
NEAR_SIDE = 40  # a tracked face's side in pixels when it is searched for again near its last box
DLIB_SIDE = 80  # the smallest face side in pixels that dlib's HOG detector finds without upsampling
DLIB_GROW, DLIB_RAISE = 1.15, 0.08  # dlib's box to the cascade's framing (AffectNet faces): side × 1.15, centre
# raised 0.08 of dlib's side (the cascade's box is 1.10-1.18 times as large and centred higher, medians)


def iou(a: BoxT, b: BoxT) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


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
        self,
        min_face: int = MIN_FACE,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        max_side: int = DETECT_MAX_SIDE,
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

    def __init__(self, min_face: int = MIN_FACE, max_side: int = DETECT_MAX_SIDE) -> None:
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


def check_margin(margin: object) -> None:
    """Refuse a margin that is not a number from 0 to :data:`MAX_MARGIN` (one line naming it)."""
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin <= MAX_MARGIN:
        raise FerflowError(f"margin must be a number from 0 to {MAX_MARGIN}, got {margin!r}")


def crop_face(gray: np.ndarray, box: BoxT, margin: float) -> np.ndarray:
    """The square around ``box`` widened by ``margin`` of its side on each side, edge-padded outside the photo."""
    x, y, w, h = box
    side = round(max(w, h) * (1 + 2 * margin))
    left, top = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
    pad = max(0, -left, -top, left + side - gray.shape[1], top + side - gray.shape[0])
    padded = np.pad(gray, pad, mode="edge") if pad else gray
    return padded[top + pad : top + pad + side, left + pad : left + pad + side]


def find_faces(gray: np.ndarray, detector: Detector | None, margin: float) -> tuple[list[BoxT], list[np.ndarray]]:
    """Face boxes and crops of one grayscale photo (``detector=None``: the whole photo is one face crop)."""
    if detector is None:
        side = min(gray.shape)
        return [((gray.shape[1] - side) // 2, (gray.shape[0] - side) // 2, side, side)], [gray]
    boxes = detector(gray)
    return boxes, [crop_face(gray, b, margin) for b in boxes]
