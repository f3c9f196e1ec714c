"""The photo command of ``ferflow predict``: photos and folders, on the Python API
(:class:`~ferflow.predict.recognizer.EmotionRecognizer`).

Each photo (any size, any Pillow-readable format, EXIF orientation applied) is turned into grayscale with
:func:`ferflow.faces.to_grayscale_array`, its faces are found and cropped (:mod:`.detection`; ``--no-detect`` treats
every image as a face crop, centre square) and classified (:mod:`.classifier`, ``--checkpoint``) in batches of
``--batch-size`` gathered across photos; the run ends with its throughput in images/s. ``--annotate`` writes each
photo with its boxes and labels drawn, ``--json`` prints one JSON document instead of the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from ferflow.errors import FerflowError
from ferflow.faces import IMAGE_SUFFIXES, WIDE_MODES, to_grayscale_array
from ferflow.predict.drawing import draw_faces
from ferflow.predict.recognizer import EmotionRecognizer, Face, load_photo
from ferflow.predict.tracking import BoxT
from ferflow.storage import atomic_path, check_outputs


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


def run_photos(args: argparse.Namespace, recognizer: EmotionRecognizer) -> int:
    """Predict the photos and folders of ``ferflow predict`` (see the module docstring)."""
    photos = find_images(args.inputs)
    out_dir = Path(args.annotate) if args.annotate else None
    if out_dir is not None:
        check_outputs([out_dir], args.inputs, folder=True)  # is, or contains, an input: the photos would be replaced
        targets = [annotation_path(out_dir, rel) for _, rel in photos]
        clash = next((t for t in targets if targets.count(t) > 1), None)
        if clash is not None:
            raise FerflowError(f"{clash}: several inputs would be annotated to the same file; annotate them separately")
        check_outputs(targets, [path for path, _ in photos])
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
