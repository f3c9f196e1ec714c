"""Evaluate a checkpoint on labelled faces: accuracy, macro-F1, per-class scores, confusion, predictions.

The data can be a ferflow split file (``.npz``, what the pipeline's evaluate rule passes), a class-folder
layout as a folder or zip (``test/<class>/*.jpg``, or ``<class>/*.jpg`` at the top), or the ICML CSV; the
last three are read by :func:`ferflow.sources.load_labelled`, which converts every image to 48×48
grayscale. Every labelled test image (else every labelled image) is scored: a folder or zip is not
filtered by file name unless ``--split`` asks, and the ICML CSV's test rows are its ``PublicTest`` rows
unless ``--split`` names others. The checkpoint's own input handling is then applied (3 identical
channels when the model takes RGB, the [-1, 1] normalisation). Metrics come from scikit-learn.

Faces from elsewhere:

- ``--classes`` maps the dataset's own class names to ferflow's (``{"happiness": "happy", "contempt": null}``);
- ``--detect`` finds the face in each whole image with ``predict``'s detector and crops it as ``predict`` does
  (:mod:`ferflow.detection`: the largest box, widened by ``--margin``), so that the score is what a user gets; an
  image without a face counts as wrong, and their number is reported (``no_face``);
- ``--ids even|odd`` keeps the images whose file-name number (``image0000294.jpg`` → 294) is even or odd: choose
  recipes on one half, report the other.

The model predicts over its own classes; accuracy, per-class scores and macro-F1 are taken on the classes that the
model and the dataset share (:mod:`ferflow.metrics`, the one definition, validation's too), and a dataset that
shares none is refused.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from ferflow import checkpoint, models, tracking
from ferflow.classes import shared_classes
from ferflow.cli import positive_int
from ferflow.config import default
from ferflow.detection import DETECTORS, MARGIN, check_margin, find_faces
from ferflow.errors import FerflowError
from ferflow.faces import to_face48, to_grayscale_array
from ferflow.fetch import resolve_source
from ferflow.inference import (
    AUTO_TTA,
    EVAL_BATCH,
    TTA_CHOICES,
    load_labelled_images,
    predict_probabilities,
    resolve_tta,
)
from ferflow.metrics import compute_metrics, mean_recall
from ferflow.sources import TEST_SPLITS, ClassMap
from ferflow.storage import Split, atomic_path, check_outputs, parse_json_object, write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", help="a ferflow checkpoint (best.pt) (default: the model shipped with ferflow)")
    parser.add_argument(
        "--data", required=True, help="split file (.npz), class-folder layout (folder or zip) or ICML CSV"
    )
    parser.add_argument("--out", help="metrics JSON to write")
    parser.add_argument("--predictions", help="per-image predictions CSV (id, true, predicted, p_<class>...)")
    parser.add_argument("--per-class", help="per-class precision/recall/F1/support CSV")
    parser.add_argument("--confusion", help="confusion matrix CSV (rows: true class, columns: predicted)")
    parser.add_argument(
        "--split",
        choices=TEST_SPLITS,
        default=None,
        help="keep only these test images: a folder's or zip's by file name prefix, the ICML CSV's "
        "by Usage (default: every image of a folder or zip, the CSV's PublicTest rows)",
    )
    parser.add_argument(
        "--detect", action="store_true", help="find and crop each image's face with predict's detector, as users get it"
    )
    parser.add_argument("--detector", choices=list(DETECTORS), default="haar", help="face detector of --detect")
    parser.add_argument(
        "--margin", type=float, default=MARGIN, help="--detect: widen each face box by this fraction of its side"
    )
    parser.add_argument(
        "--ids", choices=ID_HALVES, default="all", help="keep the images whose file-name number is even or odd"
    )
    parser.add_argument("--sha256", help="check --data (a local archive or a download) against this sha256")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path("resources/downloads"), help="where a kaggle: or URL --data is fetched"
    )
    parser.add_argument(
        "--classes", default="{}", help="the dataset's class names → ferflow's, JSON (e.g. {\"contempt\": null})"
    )
    parser.add_argument("--batch-size", type=positive_int, default=EVAL_BATCH, help="images per inference batch")
    parser.add_argument("--threads", type=positive_int, default=default("threads"), help="CPU threads for inference")
    parser.add_argument(
        "--tta",
        choices=TTA_CHOICES,
        default=default("evaluation.tta"),
        help="test-time augmentation: mean over these views (auto: the checkpoint's recommended views, else none)",
    )
    tracking.add_arguments(parser, tensorboard=False)


ID_HALVES: tuple[str, ...] = ("all", "even", "odd")
_NUMBER = re.compile(r"(\d+)\D*$")


def id_half(ids: np.ndarray, half: str) -> np.ndarray:
    """Which of ``ids`` keep ``half`` (``even`` / ``odd``: the last number in the file name; ``all``: every one);
    an id without a number is a one-line error."""
    if half == "all":
        return np.ones(len(ids), dtype=bool)
    numbers = []
    for id_ in ids:
        found = _NUMBER.search(str(id_).rsplit("/", 1)[-1])
        if found is None:
            raise FerflowError(f"{id_}: no number in the file name to choose the {half} ids by")
        numbers.append(int(found.group(1)))
    return (np.array(numbers) % 2 == 0) == (half == "even")


class DetectedFace:
    """``predict``'s face finding on a whole labelled image (:class:`ferflow.sources.FaceHook`): the largest face
    box widened by ``margin``, as a 48×48 face; None (the id then listed in ``missed``) where none is found."""

    def __init__(self, detector: str, margin: float) -> None:
        self.detector, self.margin, self.missed = DETECTORS[detector](), margin, []

    def __call__(self, image: Image.Image) -> np.ndarray | None:
        gray = to_grayscale_array(image)
        boxes, crops = find_faces(gray, self.detector, self.margin)
        if not boxes:
            return None
        largest = max(range(len(boxes)), key=lambda i: boxes[i][2] * boxes[i][3])
        return to_face48(Image.fromarray(crops[largest]))


def predictions_frame(split: Split, probabilities: np.ndarray, classes: list[str], found: np.ndarray) -> pd.DataFrame:
    """One row per image: id, true and predicted class ('' where no face was found), and the probability of every
    class of the model."""
    predicted = probabilities.argmax(axis=1)
    frame = pd.DataFrame(
        {
            "id": split.ids,
            "true": [split.classes[i] for i in split.labels],
            "predicted": [classes[p] if ok else "" for p, ok in zip(predicted, found)],
        }
    )
    for i, name in enumerate(classes):
        frame[f"p_{name}"] = probabilities[:, i].round(6)
    return frame


def per_class_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    """The per-class scores as a table (class, precision, recall, f1, support)."""
    return pd.DataFrame([{"class": name, **scores} for name, scores in metrics["per_class"].items()])


def confusion_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    """The confusion counts with class names (index: true class, columns: predicted class)."""
    frame = pd.DataFrame(metrics["confusion"], index=metrics["scored_classes"], columns=metrics["classes"])
    frame.index.name = "true"
    return frame


def write_csv(path: str | Path, frame: pd.DataFrame, index: bool = False) -> None:
    """Write a data frame as CSV, atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=index, float_format="%.6g")


def evaluate(
    checkpoint_path: str | Path,
    data: str | Path,
    test_split: str | None = None,
    batch_size: int = EVAL_BATCH,
    tta: str = AUTO_TTA,
    *,
    class_map: ClassMap = None,
    detect: DetectedFace | None = None,
    ids: str = "all",
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Metrics (the metrics.json dict, with the view set used) and per-image predictions of a checkpoint on
    labelled data (see the module docstring for ``class_map``, ``detect`` and ``ids``)."""
    model, ckpt = checkpoint.load_model(checkpoint_path)
    tta = resolve_tta(tta, ckpt)
    split = load_labelled_images(data, test_split, class_map, detect)
    classes = list(ckpt["classes"])
    shared_classes(tuple(classes), split.classes, str(data))
    kept = id_half(split.ids, ids)
    if not kept.any():
        raise FerflowError(f"{data}: no image with an {ids} number")
    split = split.subset(kept)
    found = ~np.isin(split.ids, detect.missed) if detect is not None else np.ones(len(split), dtype=bool)
    probabilities = predict_probabilities(model, ckpt, split.images, batch_size, tta)
    predicted = np.where(found, probabilities.argmax(axis=1), -1)  # no face found: wrong whatever the class
    metrics = compute_metrics(split.labels, predicted, tuple(classes), split.classes)
    metrics.update(
        {
            "data_classes": list(split.classes),
            "detect": detect is not None,
            "no_face": int((~found).sum()),
            "ids": ids,
        }
    )
    if detect is not None:
        metrics["margin"] = detect.margin
    metrics.update(
        {
            "arch": ckpt["arch"],
            "parameters": models.count_parameters(model),
            "experiment": ckpt.get("experiment"),
            "epoch": ckpt.get("epoch"),
            "checkpoint": str(checkpoint_path),
            "data": str(data),
            "tta": tta,
        }
    )
    return metrics, predictions_frame(split, probabilities, classes, found)


def run(args: argparse.Namespace) -> int:
    check_outputs([args.out, args.predictions, args.per_class, args.confusion], [args.data, args.checkpoint])
    torch.set_num_threads(args.threads)
    check_margin(args.margin)
    class_map = parse_json_object(args.classes, "--classes")
    data = args.data
    if not data.endswith(".npz") and (args.sha256 or not Path(data).exists()):
        data = resolve_source(data, args.sha256, args.cache_dir, extract_zip=False)
    metrics, predictions = evaluate(
        args.checkpoint or checkpoint.shipped(),
        data,
        args.split,
        args.batch_size,
        args.tta,
        class_map=class_map,
        detect=DetectedFace(args.detector, args.margin) if args.detect else None,
        ids=args.ids,
    )
    if args.predictions:
        write_csv(args.predictions, predictions)
    if args.per_class:
        write_csv(args.per_class, per_class_frame(metrics))
    if args.confusion:
        write_csv(args.confusion, confusion_frame(metrics), index=True)
    if args.out:
        write_json(args.out, metrics)
    tracking.log_evaluation(args, args.checkpoint, args.data, metrics)
    print(per_class_frame(metrics).to_string(index=False, float_format="%.4f"))
    print(f"{metrics['n_images']} images, {metrics['arch']} ({metrics['parameters']:,} parameters)")
    if metrics["n_unscored"]:
        print(f"{metrics['n_unscored']} images of classes the model does not know left out")
    if metrics["detect"]:
        print(f"no face found in {metrics['no_face']} of {metrics['n_images']} images (counted as wrong)")
    print(
        f"accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  mean recall "
        f"{mean_recall(metrics):.4f}  on the classes shared with the data: {', '.join(metrics['scored_classes'])}"
    )
    return 0
