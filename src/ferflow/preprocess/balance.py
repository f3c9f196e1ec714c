"""``ferflow balance``: offline augmentation bringing every training class to at least a minimum.

The study's transformations, with Keras ``ImageDataGenerator`` semantics: rotation uniform in
±``rotation`` degrees, width and height shifts uniform in ±``shift`` of the image size, zoom factors
drawn independently per axis in [1 - zoom, 1 + zoom], a horizontal flip with probability 1/2 (applied
after the affine transform), bilinear interpolation (Keras' default order 1) and "nearest" fill
(points outside the image take the value of the nearest edge pixel).

Only training images are used (the stage's validation and test files are copied through unchanged).
A class below the target gets ``target - n`` new images whose parents cycle through a seeded
permutation of that class's images, so every parent is used about equally often; classes at or above
the target are left whole, and nothing is removed. New ids are ``augment:<parent id>#k`` (k = 1, 2, ...
per parent). All random draws come from one seeded generator: the output is deterministic.

Speed: the per-image affine matrices are built with numpy and applied to whole batches with
``torch.nn.functional.affine_grid`` + ``grid_sample``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ferflow.cli import positive_int
from ferflow.config import add_settings_argument, default
from ferflow.preprocess.stages import replace_train
from ferflow.progress import progress_bar
from ferflow.storage import Split, load_split


@dataclass(frozen=True)
class Transform:
    """Ranges of the random transformations (the study's: 15°, 10%, 10%, flip)."""

    rotation: float = 15.0
    shift: float = 0.1
    zoom: float = 0.1
    horizontal_flip: bool = True


def random_affines(n: int, t: Transform, rng: np.random.Generator) -> np.ndarray:
    """``(n, 2, 3)`` matrices mapping output to input coordinates, in affine_grid's normalised [-1, 1] frame.

    As in Keras, the matrix is rotation · shift · zoom; the flip negates the output x axis.
    """
    theta = np.deg2rad(rng.uniform(-t.rotation, t.rotation, n))
    shifts = rng.uniform(-t.shift, t.shift, (n, 2)) * 2.0  # fraction of the size → normalised units
    zooms = rng.uniform(1.0 - t.zoom, 1.0 + t.zoom, (n, 2))
    flips = rng.random(n) < 0.5 if t.horizontal_flip else np.zeros(n, dtype=bool)
    cos, sin = np.cos(theta), np.sin(theta)
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # (n, 2, 2)
    linear = rot * zooms[:, None, :]  # rot @ diag(zx, zy)
    offset = np.einsum("nij,nj->ni", rot, shifts)  # rot @ shift
    linear[flips, :, 0] *= -1.0
    return np.concatenate([linear, offset[:, :, None]], axis=2).astype(np.float32)


def warp(images: np.ndarray, affines: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Apply one affine matrix per image (uint8 ``(N, H, W)`` or ``(N, H, W, C)``): bilinear, edge fill."""
    out = np.empty_like(images)
    bar = progress_bar(len(images), "augmenting")
    for start in range(0, len(images), batch_size):
        chunk = torch.from_numpy(images[start : start + batch_size])
        x = (chunk.unsqueeze(1) if chunk.ndim == 3 else chunk.permute(0, 3, 1, 2)).float()
        theta = torch.from_numpy(affines[start : start + batch_size])
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        y = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        y = y.round_().clamp_(0, 255).to(torch.uint8)
        y = y.squeeze(1) if chunk.ndim == 3 else y.permute(0, 2, 3, 1)
        out[start : start + len(y)] = y.numpy()
        bar.update(len(y))
    bar.close()
    return out


def plan_parents(labels: np.ndarray, target: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Parent index of every new image and its per-parent number k (1, 2, ...), class by class."""
    parents, ks = [], []
    for label in range(int(labels.max(initial=-1)) + 1):
        members = np.flatnonzero(labels == label)
        need = target - len(members)
        if need <= 0 or len(members) == 0:
            continue
        order = members[rng.permutation(len(members))]
        rounds = -(-need // len(members))
        parents.append(np.tile(order, rounds)[:need])
        ks.append(np.repeat(np.arange(1, rounds + 1), len(members))[:need])
    if not parents:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(parents), np.concatenate(ks)


def balance(train: Split, target: int, transform: Transform, seed: int) -> tuple[Split, Split]:
    """``(balanced train, new images only)``: every class with images brought to at least ``target``."""
    rng = np.random.default_rng(seed)
    parents, ks = plan_parents(train.labels, target, rng)
    affines = random_affines(len(parents), transform, rng)
    new = replace(
        train.subset(parents),
        images=warp(train.images[parents], affines),
        ids=np.array([f"augment:{pid}#{k}" for pid, k in zip(train.ids[parents], ks)], dtype=np.str_),
    )
    return Split.concat([train, new]), new


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--in-dir", required=True, help="data stage directory to read")
    parser.add_argument("--out", required=True, help="data stage directory to write")
    add_settings_argument(parser, "balance")
    parser.add_argument("--seed", type=int, default=default("seed"), help="seed of the parents and transforms")
    parser.add_argument("--threads", type=positive_int, default=default("threads"), help="CPU threads of the warping")


def run(args: argparse.Namespace) -> int:
    settings = args.settings
    torch.set_num_threads(args.threads)
    src, out = Path(args.in_dir), Path(args.out)
    train = load_split(src / "train.npz")
    transform = Transform(settings["rotation"], settings["shift"], settings["zoom"], settings["horizontal_flip"])
    merged, new = balance(train, settings["min_per_class"], transform, args.seed)
    old, added, after = train.counts(), new.counts(), merged.counts()
    for name in train.classes:
        note = "" if old[name] else " (no images: cannot be balanced)"
        print(f"{name:>8}: {old[name]:6d} + {added[name]:5d} augmented = {after[name]:6d}{note}", file=sys.stderr)
    replace_train(src, out, merged)
    return 0
