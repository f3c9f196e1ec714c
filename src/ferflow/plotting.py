"""Matplotlib helpers shared by every figure: headless backend, class palette, atomic saving.

Importing this module selects the Agg backend, so figures render on machines without a display.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ferflow.classes import CLASS_NAMES  # noqa: E402
from ferflow.storage import atomic_path  # noqa: E402

CLASS_COLORS: dict[str, str] = {
    "angry": "#d62728",
    "disgust": "#2ca02c",
    "fear": "#9467bd",
    "happy": "#ff7f0e",
    "neutral": "#7f7f7f",
    "sad": "#1f77b4",
    "surprise": "#e377c2",
}
"""One fixed colour per class, used by every figure so a class looks the same everywhere."""

FORMATS = ("png", "svg", "pdf")


def class_color(label: int | str) -> str:
    """The palette colour of a class given by index or name."""
    return CLASS_COLORS[CLASS_NAMES[label] if isinstance(label, (int, np.integer)) else label]


def new_figure(width: float, height: float) -> tuple[Figure, Axes]:
    """A figure with one axes, sized in inches."""
    fig, ax = plt.subplots(figsize=(width, height))
    return fig, ax


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int) -> None:
    """Save ``fig`` atomically in the format its suffix names (png, svg, pdf), then close it."""
    fmt = Path(path).suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        plt.close(fig)
        raise ValueError(f"{path}: unsupported figure format {fmt!r} (use {', '.join(FORMATS)})")
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", metadata=_metadata(fmt))
    finally:
        plt.close(fig)


def _metadata(fmt: str) -> dict[str, str | None]:
    """Figure metadata without creation dates, so reruns write identical files."""
    if fmt == "png":
        return {"Software": None}
    if fmt == "svg":
        return {"Date": None}
    return {"CreationDate": None}


def scatter_by_class(ax: Axes, coords: np.ndarray, labels: np.ndarray, size: float = 4.0) -> None:
    """Scatter 2-D points coloured by class (canonical order, palette colours) with a legend."""
    coords = np.asarray(coords)
    labels = np.asarray(labels)
    for i, name in enumerate(CLASS_NAMES):
        mask = labels == i
        if mask.any():
            ax.scatter(
                coords[mask, 0],
                coords[mask, 1],
                s=size,
                c=CLASS_COLORS[name],
                label=name,
                alpha=0.7,
                linewidths=0,
                rasterized=True,
            )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(markerscale=3, fontsize="small", frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
