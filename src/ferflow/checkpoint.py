"""ferflow checkpoints: self-describing, loadable with ``torch.load(weights_only=True)``.

A checkpoint is a dict of plain values and tensors:

``format`` ("ferflow-checkpoint"), ``version`` (1), ``arch`` (registry name), ``arch_kwargs``
(what ``models.build`` needs besides the name, including ``in_channels`` and ``num_classes``),
``classes`` (list of names, index = label: the training data's, :mod:`ferflow.classes`), ``image_size`` (48),
``normalization``
(``{"mean": .5, "std": .5}``), ``model`` (state_dict), optionally ``tta`` (the test-time views that
``--tta auto`` uses: the shipped model's, measured by its card) and ``tta_accuracy`` (the card's accuracy of each
view set, from which a video's ``auto`` takes the cheapest close to the best), and optional training state
(``epoch``, ``optimizer``, ``scheduler``, ``rng``, ``history``, ...) under other keys.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ferflow import models
from ferflow.classes import CLASS_NAMES, KNOWN_CLASSES
from ferflow.errors import FerflowError
from ferflow.faces import IMAGE_SIZE, NORMALIZATION
from ferflow.storage import atomic_path, check_readable

FORMAT = "ferflow-checkpoint"
VERSION = 1
IMAGE_SIZES = range(8, 513)
"""The image sizes a checkpoint or an ONNX export may declare (ferflow trains on 48 px)."""
SHIPPED = Path(__file__).with_name("assets") / "fernetfast.pt"
"""The model shipped in the package (``assets/MODEL_CARD.md``): ``predict`` and ``evaluate`` use it by default."""


def shipped() -> Path:
    """The checkpoint shipped with ferflow; a one-line error where this copy of the package has none."""
    if not SHIPPED.is_file():
        raise FerflowError(f"{SHIPPED}: no model is shipped with this ferflow; pass --checkpoint (best.pt or .onnx)")
    return SHIPPED


def make(
    model: nn.Module, arch: str, arch_kwargs: dict[str, Any], classes: tuple[str, ...] = CLASS_NAMES, **extra: Any
) -> dict[str, Any]:
    """The checkpoint dict for ``model`` of ``classes`` (weights copied to CPU)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "arch": arch,
        "arch_kwargs": dict(arch_kwargs),
        "classes": list(classes),
        "image_size": IMAGE_SIZE,
        "normalization": dict(NORMALIZATION),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }


def save(path: str | os.PathLike[str], checkpoint: dict[str, Any]) -> None:
    """Write a checkpoint atomically."""
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def save_untrained(path: str | os.PathLike[str], arch: str, **arch_kwargs: Any) -> None:
    """Write a checkpoint of a freshly initialised ``arch`` (benchmarks and tests: speed does not depend on
    the weights)."""
    save(path, make(models.build(arch, **arch_kwargs), arch, arch_kwargs))


def read(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a checkpoint; anything that is not a ferflow checkpoint is refused."""
    check_readable(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FerflowError(f"{path}: checkpoint not found") from None
    except (
        Exception
    ) as exc:  # torch raises many types (UnpicklingError, RuntimeError, KeyError, ...) for non-checkpoints
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FerflowError(
            f"{path}: not a loadable ferflow checkpoint (refused by weights_only loading: {first})"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise FerflowError(f"{path}: not a ferflow checkpoint (no 'format: {FORMAT}' entry)")
    if ckpt.get("version") != VERSION:
        raise FerflowError(
            f"{path}: ferflow checkpoint version {ckpt.get('version')!r} is not supported (expected {VERSION})"
        )
    check_image_size(ckpt.get("image_size"), path)
    return ckpt


def check_image_size(size: Any, path: str | os.PathLike[str]) -> int:
    """The image size a checkpoint or an ONNX export declares, refused unless an integer within
    :data:`IMAGE_SIZES` (a size read from a file is never trusted: 100,000 would grow memory without bound)."""
    if isinstance(size, bool) or not isinstance(size, int) or size not in IMAGE_SIZES:
        raise FerflowError(
            f"{path}: image_size {size!r} is not an integer from {IMAGE_SIZES.start} to {IMAGE_SIZES.stop - 1}"
        )
    return size


def load_model(path: str | os.PathLike[str]) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a checkpoint in eval mode on CPU; returns (model, checkpoint)."""
    ckpt = read(path)
    kwargs = dict(ckpt.get("arch_kwargs") or {})
    kwargs.pop("pretrained", None)  # weights come from the checkpoint, never from a download
    weights = ckpt.get("model") or {}
    try:
        with torch.device("meta"):  # sizes read from the file are checked before any memory is taken for them
            needed = models.count_parameters(models.build(str(ckpt.get("arch")), **kwargs))
        stored = sum(v.numel() for v in weights.values() if isinstance(v, torch.Tensor))
        if needed > stored:
            raise ValueError(f"its arch_kwargs {kwargs} make {needed:,} parameters, its weights hold {stored:,}")
        model = models.build(str(ckpt.get("arch")), **kwargs)
        model.load_state_dict(weights)
    except (FerflowError, TypeError, KeyError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FerflowError(f"{path}: weights that do not fit its arch {ckpt.get('arch')!r} ({first})") from None
    broken = next((k for k, v in model.state_dict().items() if v.is_floating_point() and not v.isfinite().all()), None)
    if broken is not None:
        raise FerflowError(f"{path}: non-finite weights (NaN or infinity) in {broken}")
    classes = ckpt.get("classes")
    outputs = kwargs.get("num_classes", len(CLASS_NAMES))
    if (
        not isinstance(classes, list)
        or len(classes) != outputs
        or len(set(classes)) != len(classes)
        or not set(classes) <= set(KNOWN_CLASSES)
    ):
        raise FerflowError(
            f"{path}: classes {classes} for {outputs} outputs (expected one distinct name of "
            f"{', '.join(KNOWN_CLASSES)} per output)"
        )
    model.eval()
    return model, ckpt
