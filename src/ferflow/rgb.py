"""``ferflow rgb``: a data stage's grayscale images as 3 identical channels (the study's model input)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ferflow.errors import FerflowError
from ferflow.storage import SPLITS, Split, load_stage, save_stage


def to_rgb(split: Split) -> Split:
    """``(N, 48, 48)`` gray → ``(N, 48, 48, 3)`` with the gray value in every channel (RGB passes through)."""
    if split.images.ndim == 4 and split.images.shape[-1] == 3:
        return split
    if split.images.ndim != 3:
        raise ValueError(f"expected (N, H, W) grayscale images, got shape {split.images.shape}")
    return Split(np.repeat(split.images[..., None], 3, axis=-1), split.labels, split.ids)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--in-dir", required=True, help="grayscale data stage directory")
    parser.add_argument("--out", required=True, help="RGB data stage directory to write")


def run(args: argparse.Namespace) -> int:
    splits = load_stage(Path(args.in_dir))
    try:
        converted = {name: to_rgb(splits[name]) for name in SPLITS}
    except ValueError as exc:
        raise FerflowError(f"{args.in_dir}: {exc}") from None
    save_stage(Path(args.out), converted)
    print(f"wrote {args.out}: " + ", ".join(f"{name} {converted[name].images.shape}" for name in SPLITS))
    return 0
