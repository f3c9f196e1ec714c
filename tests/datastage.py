"""A small synthetic data stage directory for the data-stage tests (injection, balancing, RGB, figures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferflow import synthetic
from ferflow.storage import Split, save_stage


def make_split(counts: dict[int, int], prefix: str, seed: int) -> Split:
    """Random 48×48 gray images, ``counts[label]`` of each label, ids ``<prefix>/<label>/<n>``."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.full(n, label) for label, n in counts.items()]).astype(np.int64)
    images = rng.integers(0, 256, (len(labels), 48, 48), dtype=np.uint8)
    return Split(images, labels, [f"{prefix}/{label}/{i}" for i, label in enumerate(labels)])


def make_stage(root: Path, train: dict[int, int], seed: int = 0) -> Path:
    """A stage directory with the given training counts and a small val and test split of every class."""
    small = {label: 2 for label in range(7)}
    save_stage(
        root,
        {
            "train": make_split(train, "train", seed),
            "val": make_split(small, "val", seed + 1),
            "test": make_split(small, "test", seed + 2),
        },
    )
    return root


def synthetic_stage(root: Path) -> Path:
    """A small grayscale model-input stage of the synthetic faces: 160 training images, 64 val, 64 test."""
    splits = synthetic.generate(n_train=160, n_test=128, seed=5)
    test = splits["test"]
    save_stage(
        root, {"train": splits["train"], "val": test.subset(np.arange(64)), "test": test.subset(np.arange(64, 128))}
    )
    return root
