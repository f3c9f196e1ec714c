"""``ferflow soft-labels``: a seed ensemble's soft labels of the training images, the teacher of a distillation
with ``ensemble: true``.

Each teacher checkpoint (one per seed of an experiment) predicts every training image with test-time
augmentation (``crops10``: the mean over four corner crops and the centre crop, each also mirrored), and the
ensemble's soft label of an image is the mean of the seeds' probabilities. They are computed once, so a student
trains without any teacher forward pass; while training, each image's soft label goes with it through the
batch (mixed along with it by mixup or cutmix), and the distillation term compares the student's logits on the
augmented crop with it (:func:`ferflow.train.losses.distillation_loss`, the log-probabilities standing for the
teacher's logits, so the temperature softens the ensemble's distribution).

The file (``runs/<model>/<experiment>/soft_labels.npz``) holds ``probabilities`` ``(N, 7)`` float32 in the
order of the training split and ``data``, the digest of that split (:func:`ferflow.storage.split_digest`):
a student trained on other images is refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ferflow import checkpoint
from ferflow.cli import positive_int
from ferflow.config import default
from ferflow.errors import FerflowError
from ferflow.inference import EVAL_BATCH, TTA_CHOICES, fuse_batchnorm, predict_probabilities, resolve_tta
from ferflow.storage import Split, atomic_path, check_outputs, load_split, split_digest


def ensemble_probabilities(checkpoints: list[Path], split: Split, tta: str, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """The mean over ``checkpoints`` of each one's (test-time augmented) class probabilities of ``split``."""
    total = np.zeros((len(split), len(split.classes)), dtype=np.float64)
    for path in checkpoints:
        model, ckpt = checkpoint.load_model(path)
        if ckpt["classes"] != list(split.classes):
            raise FerflowError(
                f"{path}: a teacher of classes {', '.join(ckpt['classes'])} for {', '.join(split.classes)}"
            )
        model = fuse_batchnorm(model.eval())
        total += predict_probabilities(model, ckpt, split.images, batch_size, resolve_tta(tta, ckpt))
    probabilities = (total / len(checkpoints)).astype(np.float32)
    if not np.isfinite(probabilities).all():
        raise FerflowError(f"{', '.join(map(str, checkpoints))}: non-finite probabilities (NaN or infinity)")
    return probabilities


def write(path: Path, probabilities: np.ndarray, split: Split) -> None:
    """The soft labels of ``split``, stamped with its digest, written atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, probabilities=probabilities, data=np.array(split_digest(split)))


def load(path: Path, split: Split) -> np.ndarray:
    """The soft labels in ``path``, after checking that they are probabilities of ``split``'s images."""
    try:
        with np.load(path, allow_pickle=False) as data:
            probabilities, digest = data["probabilities"], str(data["data"])
    except (OSError, ValueError, KeyError) as exc:
        raise FerflowError(f"{path}: not a soft-labels file ({exc})") from None
    if digest != split_digest(split):
        raise FerflowError(f"{path}: soft labels of other training images than the student's")
    classes = len(split.classes)
    if probabilities.shape != (len(split), classes) or not np.allclose(probabilities.sum(1), 1, atol=1e-3):
        raise FerflowError(f"{path}: not one probability row of {classes} classes per training image")
    return probabilities


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoints", nargs="+", type=Path, help="the teacher checkpoints (best.pt), one per seed")
    parser.add_argument("--data", required=True, type=Path, help="the training split file (train.npz)")
    parser.add_argument("--out", required=True, type=Path, help="soft labels to write (.npz)")
    parser.add_argument(
        "--tta",
        choices=TTA_CHOICES,
        default=default("evaluation.tta"),
        help="views each teacher averages (auto: the checkpoint's recommended views, else none)",
    )
    parser.add_argument("--batch-size", type=positive_int, default=EVAL_BATCH, help="images per inference batch")
    parser.add_argument("--threads", type=positive_int, default=default("threads"), help="CPU threads")


def run(args: argparse.Namespace) -> int:
    check_outputs([args.out], [args.data, *args.checkpoints])
    torch.set_num_threads(args.threads)
    split = load_split(args.data)
    probabilities = ensemble_probabilities(args.checkpoints, split, args.tta, args.batch_size)
    write(args.out, probabilities, split)
    agreement = float(np.mean(probabilities.argmax(1) == split.labels))
    print(
        f"{args.out}: soft labels of {len(split)} images from {len(args.checkpoints)} teacher(s), tta {args.tta}; "
        f"the ensemble agrees with {agreement:.2%} of the training labels",
        flush=True,
    )
    return 0
