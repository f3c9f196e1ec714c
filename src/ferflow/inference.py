"""Batched inference of a checkpoint's model on labelled images, with optional test-time augmentation."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.fx.experimental.optimization import fuse
from torch.fx.proxy import TraceError

from ferflow.errors import FerflowError
from ferflow.faces import to_model_input
from ferflow.sources import ClassMap, FaceHook, load_labelled
from ferflow.storage import Split, check_readable, load_split

EVAL_BATCH = 256
"""Images per batch of every inference-only pass (evaluation, embeddings, export and int8 checks, validation)."""


def load_labelled_images(
    path: str | Path,
    test_split: str | None = None,
    class_map: ClassMap = None,
    face: FaceHook | None = None,
) -> Split:
    """The labelled images at ``path``: a split file, or the test (else only) split of a layout, filtered
    by ``test_split``, its class names mapped by ``class_map``, its faces found by ``face`` where given (see
    :func:`ferflow.sources.load_labelled`)."""
    path = Path(path)
    if path.suffix == ".npz":
        if test_split is not None:
            raise FerflowError(f"{path}: a split file holds one split; --split applies to folders, zips and CSVs")
        if face is not None or class_map:
            raise FerflowError(
                f"{path}: a split file holds faces already cropped and named; --detect and --classes "
                "apply to folders, zips and CSVs"
            )
        split = load_split(path)
        if not len(split):
            raise FerflowError(f"{path}: the split file holds no images")
        return split
    if not path.exists():
        raise FerflowError(f"{path}: data not found")
    if not path.is_dir():
        check_readable(path)
    splits = load_labelled(path, test_split=test_split, class_map=class_map, face=face)
    for key in ("test", "all"):
        if key in splits and len(splits[key]):
            return splits[key]
    raise FerflowError(f"{path}: no labelled test images (found splits: {', '.join(splits) or 'none'})")


def batched_outputs(
    fn: Callable[[torch.Tensor], torch.Tensor], images: np.ndarray, in_channels: int, batch_size: int
) -> np.ndarray:
    """``fn`` applied to model inputs made from uint8 ``images`` batch by batch, without gradients."""
    outputs = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = to_model_input(images[start : start + batch_size], in_channels)
            outputs.append(fn(x).float().numpy())
    return np.concatenate(outputs)


def in_channels_of(ckpt: dict[str, Any]) -> int:
    """The number of input channels a checkpoint's model expects."""
    return int(ckpt["arch_kwargs"].get("in_channels", 3))


def shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """The batch moved by (dy, dx) pixels, edges replicated (a crop of a padded image)."""
    pad = max(abs(dy), abs(dx))
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    h, w = x.shape[2:]
    return padded[:, :, pad - dy : pad - dy + h, pad - dx : pad - dx + w]


def crop_at(x: torch.Tensor, size: int, y: int, x0: int) -> torch.Tensor:
    """The ``size`` × ``size`` window of the batch whose top-left pixel is (y, x0)."""
    return x[:, :, y : y + size, x0 : x0 + size]


def ten_crops(x: torch.Tensor, size: int) -> list[torch.Tensor]:
    """The four corner crops and the centre crop of side ``size``, each also mirrored (Krizhevsky's ten crops)."""
    h, w = x.shape[2:]
    corners = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), ((h - size) // 2, (w - size) // 2)]
    crops = [crop_at(x, size, y, x0) for y, x0 in corners]
    return crops + [c.flip(3) for c in crops]


View = Callable[[torch.Tensor, int], list[torch.Tensor]]
TTA_VIEWS: dict[str, View] = {
    "none": lambda x, crop: [x],
    "flip": lambda x, crop: [x, x.flip(3)],
    "flip-shift": lambda x, crop: [
        shifted(x.flip(3) if f else x, dy, dx)
        for f in (False, True)
        for dy, dx in ((0, 0), (-2, 0), (2, 0), (0, -2), (0, 2))
    ],
    "crops10": ten_crops,
}
"""Test-time augmentation: the views of a batch whose softmax outputs are averaged (``crop``: the side of a
``crops10`` crop)."""
AUTO_TTA = "auto"
TTA_CHOICES = [AUTO_TTA, *TTA_VIEWS]
"""What ``--tta`` takes: ``auto`` (the view set a checkpoint recommends, see :func:`resolve_tta`) or a view set."""
TTA_CROP_FRACTION = 7 / 8  # crops10 on a model trained on whole faces: crops of 7/8 of the side (42 of 48 px), resized


VIDEO_TOLERANCE = 0.5
"""Points of accuracy a video or camera gives up for speed: its ``auto`` is the view set with the fewest views that
the checkpoint's card measured (``tta_accuracy``) within this of the best (the shipped model: flip, 0.37 points
below ten crops with a fifth of the forward passes)."""


def view_count(tta: str) -> int:
    """How many forward passes a view set costs per face."""
    return len(TTA_VIEWS[tta](torch.zeros(1, 1, 8, 8), 4))


def resolve_tta(tta: str, ckpt: dict[str, Any], video: bool = False) -> str:
    """The view set of ``tta``: for ``auto``, the one the checkpoint recommends (its ``tta`` entry: the
    shipped model's card measured that it pays), else ``none``; for a ``video`` (or camera), the cheapest of
    those its ``tta_accuracy`` entry measured within :data:`VIDEO_TOLERANCE` points of the best."""
    if tta not in TTA_CHOICES:
        raise FerflowError(f"tta {tta!r} is not one of {', '.join(TTA_CHOICES)}")
    resolved = (ckpt.get("tta") or "none") if tta == AUTO_TTA else tta
    measured = {k: v for k, v in (ckpt.get("tta_accuracy") or {}).items() if k in TTA_VIEWS}
    if tta == AUTO_TTA and video and measured:
        good = [k for k, v in measured.items() if v >= max(measured.values()) - VIDEO_TOLERANCE]
        resolved = min(good, key=view_count)
    if resolved not in TTA_VIEWS:
        raise FerflowError(f"the checkpoint recommends tta {resolved!r}, not one of {', '.join(TTA_VIEWS)}")
    return resolved


def tta_crop(ckpt: dict[str, Any], side: int) -> int:
    """The side of a ``crops10`` view: the crop the model was trained on (``input_crop``), else 7/8 of ``side``."""
    return int(ckpt["arch_kwargs"].get("input_crop") or round(side * TTA_CROP_FRACTION))


def resized(x: torch.Tensor, side: int) -> torch.Tensor:
    """The batch resized to ``side`` × ``side`` (bilinear; unchanged when it is that size already): a crop of a
    model trained on whole faces, which may take no other size (the ResNet's dense head)."""
    if x.shape[-2:] == (side, side):
        return x
    return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)


def predict_probabilities(
    model: nn.Module, ckpt: dict[str, Any], images: np.ndarray, batch_size: int, tta: str = "none"
) -> np.ndarray:
    """Softmax class probabilities ``(N, 7)`` of ``model`` on uint8 images; with test-time augmentation
    (``flip``: the image and its mirror; ``flip-shift``: both, each also moved by 2 pixels up, down, left and
    right; ``crops10``: four corner crops and the centre crop, each also mirrored, resized back to the input's
    side unless the model was trained on crops, ``input_crop``) the mean of the views' probabilities."""
    views, side = TTA_VIEWS[tta], images.shape[1]
    crop = tta_crop(ckpt, side)
    fit = (lambda v: v) if ckpt["arch_kwargs"].get("input_crop") else (lambda v: resized(v, side))
    return batched_outputs(
        lambda x: torch.stack([torch.softmax(model(fit(view)).float(), dim=1) for view in views(x, crop)]).mean(0),
        images,
        in_channels_of(ckpt),
        batch_size,
    )


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of the eval-mode ``model`` with every Conv→BatchNorm pair folded into one convolution; the
    model itself, said on stderr, when torch.fx cannot trace it (data-dependent control flow; both ONNX
    exporters then fold batch norm themselves)."""
    try:
        return fuse(model, inplace=False)
    except TraceError as exc:
        print(
            f"ferflow: batch norm left unfolded, torch.fx cannot trace {type(model).__name__} ({exc})", file=sys.stderr
        )
        return model
