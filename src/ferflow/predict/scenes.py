"""Scenes with faces of known places, for the tests and benchmarks of face detection, photos and videos: faces
(real or drawn) pasted into face-free scenes, and clips written with OpenCV. Every scene is deterministic for its
seed or generator."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
from PIL import Image

from ferflow.predict.tracking import BoxT as Box


def affectnet_faces(archive_path: Path) -> list[tuple[str, np.ndarray]]:
    """``(folder name, RGB face)`` of every image in the AffectNet sample, in sorted order."""
    with zipfile.ZipFile(archive_path) as archive:
        names = sorted(n for n in archive.namelist() if n.lower().endswith(".jpg"))
        return [
            (PurePosixPath(n).parent.name, np.asarray(Image.open(io.BytesIO(archive.read(n))).convert("RGB")))
            for n in names
        ]


def drawn_face(side: int) -> np.ndarray:
    """A cartoon face (oval, brows, eyes, nose, mouth) that the Haar cascade takes for a face."""
    img = np.full((side, side), 90, np.uint8)
    c = side // 2
    cv2.ellipse(img, (c, int(c * 1.05)), (int(side * 0.36), int(side * 0.46)), 0, 0, 360, 200, -1)
    img = cv2.GaussianBlur(img, (0, 0), side / 40)
    for dx in (-1, 1):
        ex, ey = c + dx * int(side * 0.16), int(side * 0.42)
        cv2.ellipse(img, (ex, ey - int(side * 0.07)), (int(side * 0.10), int(side * 0.025)), 0, 0, 360, 70, -1)
        cv2.ellipse(img, (ex, ey), (int(side * 0.07), int(side * 0.035)), 0, 0, 360, 40, -1)
    cv2.ellipse(img, (c, int(side * 0.62)), (int(side * 0.04), int(side * 0.08)), 0, 0, 360, 150, -1)
    cv2.ellipse(img, (c, int(side * 0.76)), (int(side * 0.13), int(side * 0.035)), 0, 0, 360, 60, -1)
    return cv2.GaussianBlur(img, (0, 0), side / 80)


def scene(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A face-free BGR background: colour gradients under smooth blotches."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx / width * 160 + 40, yy / height * 160 + 40, (xx + yy) / (width + height) * 200 + 30], -1)
    blotches = cv2.GaussianBlur(rng.normal(0, 40, (height, width, 3)), (0, 0), 12)
    return np.clip(base + blotches, 0, 255).astype(np.uint8)


def background(rng: np.random.Generator, width: int = 800, height: int = 600) -> np.ndarray:
    """A colour gradient with noise: a face-free RGB scene."""
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([xx / width * 200, yy / height * 200, (xx + yy) / (width + height) * 255], -1)
    return np.clip(rgb + rng.normal(0, 10, rgb.shape), 0, 255).astype(np.uint8)


def paste(
    scene: np.ndarray, faces: list[np.ndarray], rng: np.random.Generator, cell: int = 200, random_cells: bool = False
) -> list[Box]:
    """Paste RGB face images into a grid of ``cell``-pixel cells of ``scene`` at random offsets: the first cells
    in reading order, or distinct cells drawn at random (``random_cells``)."""
    columns = scene.shape[1] // cell
    count = columns * (scene.shape[0] // cell)
    cells = rng.choice(count, len(faces), replace=False) if random_cells else range(len(faces))
    boxes = []
    for k, face in zip(cells, faces):
        s = face.shape[0]
        x = (k % columns) * cell + int(rng.integers(0, cell - s + 1))
        y = (k // columns) * cell + int(rng.integers(0, cell - s + 1))
        scene[y : y + s, x : x + s] = face
        boxes.append((x, y, s, s))
    return boxes


def moving_face_clip(
    path: Path,
    face_rgb: np.ndarray,
    frames: int = 60,
    size: tuple[int, int] = (640, 480),
    side: int = 150,
    fps: float = 30.0,
) -> list[Box]:
    """Write a clip of ``frames`` frames in which ``face_rgb`` (resized to ``side`` px) crosses the scene
    left to right on a gentle arc; returns the face's box in each frame."""
    width, height = size
    background = scene(width, height)
    face = cv2.cvtColor(cv2.resize(face_rgb, (side, side), interpolation=cv2.INTER_CUBIC), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    boxes = []
    for k in range(frames):
        t = k / max(1, frames - 1)
        x = round(20 + t * (width - side - 40))
        y = round((height - side) / 2 + 40 * np.sin(np.pi * t))
        frame = background.copy()
        frame[y : y + side, x : x + side] = face
        writer.write(frame)
        boxes.append((x, y, side, side))
    writer.release()
    return boxes


def face_photo(path: Path, sides: tuple[int, ...] = (150,), size: tuple[int, int] = (640, 480)) -> list[Box]:
    """Write a photo (JPEG or PNG by suffix) of the clips' scene with a drawn face of each side in ``sides``,
    side by side; returns their boxes."""
    frame = cv2.cvtColor(scene(*size), cv2.COLOR_BGR2RGB)
    boxes, x = [], 20
    for side in sides:
        y = (size[1] - side) // 2
        frame[y : y + side, x : x + side] = drawn_face(side)[..., None]
        boxes.append((x, y, side, side))
        x += side + 40
    Image.fromarray(frame).save(path)
    return boxes
