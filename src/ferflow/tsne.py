"""2-D t-SNE of any feature matrix (raw pixels or learned embeddings): stratified subsample, PCA, t-SNE.

Shared by the raw-pixel t-SNE of the data figures and the embedding t-SNE of each run, so both follow
one rule: at most ``max_points`` rows (a stratified, seeded subsample, every class kept in proportion),
PCA to ``pca_components`` dimensions, then a seeded 2-D t-SNE (PCA initialisation); from
``progress.MIN_ITEMS`` points on, scikit-learn logs its progress (every 50 iterations) on stdout. The
coordinates are written as CSV by :func:`write_coords` and plotted elsewhere, so a figure setting never recomputes them.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from ferflow import progress
from ferflow.classes import CLASS_NAMES
from ferflow.config import add_settings_argument, default
from ferflow.errors import FerflowError
from ferflow.storage import atomic_path


def add_tsne_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """The t-SNE settings (config ``tsne``, one ``--settings`` argument) and seed of ``ferflow <command>``."""
    add_settings_argument(parser, command)
    parser.add_argument("--seed", type=int, default=default("seed"), help="seed of the subsample, PCA and t-SNE")


def stratified_subsample(labels: np.ndarray, max_points: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``max_points`` rows, each class kept in proportion (largest remainder)."""
    labels = np.asarray(labels)
    n = len(labels)
    if n <= max_points:
        return np.arange(n)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * (max_points / n)
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota), kind="stable")[: max_points - quota.sum()]:
        quota[i] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == c), size=q, replace=False) for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(chosen))


def embed_2d(
    features: np.ndarray,
    labels: np.ndarray,
    pca_components: int,
    perplexity: float,
    max_iter: int,
    max_points: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2-D t-SNE coordinates of ``features`` (N, D) → ``(coords (M, 2), labels (M,), index (M,))``.

    ``index`` gives the rows of ``features`` that were embedded (all of them when N <= max_points).
    The PCA width is capped by the number of rows and features, and the perplexity by (M - 1) / 3, so
    small inputs (tests, tiny presets) still embed.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    labels = np.asarray(labels)
    index = stratified_subsample(labels, max_points, seed)
    x = x[index]
    m = len(x)
    if m < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {m}")
    width = min(pca_components, m, x.shape[1])
    if width < x.shape[1]:
        x = PCA(n_components=width, random_state=seed).fit_transform(x)
    tsne = TSNE(
        n_components=2,
        perplexity=min(float(perplexity), (m - 1) / 3),
        max_iter=max_iter,
        init="pca",
        learning_rate="auto",
        random_state=seed,
        verbose=2 if m >= progress.MIN_ITEMS else 0,
    )
    coords = tsne.fit_transform(x).astype(np.float32)
    return coords, labels[index], index


def write_coords(path: str | os.PathLike[str], coords: np.ndarray, labels: np.ndarray, index: np.ndarray) -> None:
    """Write t-SNE coordinates as CSV (``index,label,class,x,y``), atomically."""
    lines = ["index,label,class,x,y"]
    lines += [
        f"{int(i)},{int(lab)},{CLASS_NAMES[int(lab)]},{x:.5f},{y:.5f}" for i, lab, (x, y) in zip(index, labels, coords)
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def read_coords(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read a CSV written by :func:`write_coords` → ``(coords (M, 2) float, labels (M,) int)``."""
    try:
        data = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise FerflowError(f"{path}: cannot read t-SNE coordinates ({exc})") from None
    data = np.atleast_1d(data)
    if data.dtype.names is None or not {"label", "x", "y"} <= set(data.dtype.names):
        raise FerflowError(f"{path}: not a t-SNE coordinate file (needs columns label, x, y)")
    return np.stack([data["x"], data["y"]], axis=1).astype(np.float32), data["label"].astype(np.int64)
