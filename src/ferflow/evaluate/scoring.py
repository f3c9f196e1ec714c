"""Evaluate a checkpoint on labelled faces: accuracy, macro-F1, per-class scores, confusion, predictions.

The data can be a ferflow split file (``.npz``, what the pipeline's evaluate rule passes), a class-folder
layout as a folder or zip (``test/<class>/*.jpg``, or ``<class>/*.jpg`` at the top), or the ICML CSV; the
last three are read by :func:`ferflow.sources.load_labelled`, which converts every image to 48×48
grayscale. Every labelled test image (else every labelled image) is scored: a folder or zip is not
filtered by file name unless ``--split`` asks, and the ICML CSV's test rows are its ``PublicTest`` rows
unless ``--split`` names others. The checkpoint's own input handling is then applied (3 identical
channels when the model takes RGB, the [-1, 1] normalisation). Metrics come from scikit-learn.

Macro-F1 averages the F1 of the classes present in the true labels or the predictions (scikit-learn's
default), so a model is not penalised for classes a small user dataset does not contain. ``per_class``
lists all seven classes; a class with neither images nor predictions scores 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ferflow import checkpoint, models, tracking
from ferflow.classes import CLASS_NAMES
from ferflow.cli import positive_int
from ferflow.config import default
from ferflow.inference import (
    AUTO_TTA,
    EVAL_BATCH,
    TTA_CHOICES,
    load_labelled_images,
    predict_probabilities,
    resolve_tta,
)
from ferflow.metrics import compute_metrics
from ferflow.sources import TEST_SPLITS
from ferflow.storage import Split, atomic_path, check_outputs, write_json


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
    parser.add_argument("--batch-size", type=positive_int, default=EVAL_BATCH, help="images per inference batch")
    parser.add_argument("--threads", type=positive_int, default=default("threads"), help="CPU threads for inference")
    parser.add_argument(
        "--tta",
        choices=TTA_CHOICES,
        default=default("evaluation.tta"),
        help="test-time augmentation: mean over these views (auto: the checkpoint's recommended views, else none)",
    )
    tracking.add_arguments(parser, tensorboard=False)


def predictions_frame(split: Split, probabilities: np.ndarray) -> pd.DataFrame:
    """One row per image: id, true and predicted class, and the probability of every class."""
    predicted = probabilities.argmax(axis=1)
    frame = pd.DataFrame(
        {
            "id": split.ids,
            "true": [CLASS_NAMES[i] for i in split.labels],
            "predicted": [CLASS_NAMES[i] for i in predicted],
        }
    )
    for i, name in enumerate(CLASS_NAMES):
        frame[f"p_{name}"] = probabilities[:, i].round(6)
    return frame


def per_class_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    """The per-class scores as a table (class, precision, recall, f1, support)."""
    return pd.DataFrame([{"class": name, **scores} for name, scores in metrics["per_class"].items()])


def confusion_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    """The confusion counts with class names (index: true class, columns: predicted class)."""
    frame = pd.DataFrame(metrics["confusion"], index=list(CLASS_NAMES), columns=list(CLASS_NAMES))
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
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Metrics (the metrics.json dict, with the view set used) and per-image predictions of a checkpoint on
    labelled data."""
    model, ckpt = checkpoint.load_model(checkpoint_path)
    tta = resolve_tta(tta, ckpt)
    split = load_labelled_images(data, test_split)
    probabilities = predict_probabilities(model, ckpt, split.images, batch_size, tta)
    metrics = compute_metrics(split.labels, probabilities.argmax(axis=1))
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
    return metrics, predictions_frame(split, probabilities)


def run(args: argparse.Namespace) -> int:
    check_outputs([args.out, args.predictions, args.per_class, args.confusion], [args.data, args.checkpoint])
    torch.set_num_threads(args.threads)
    metrics, predictions = evaluate(
        args.checkpoint or checkpoint.shipped(), args.data, args.split, args.batch_size, args.tta
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
    print(f"accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}")
    return 0
