"""Data figures of the study: sample faces per class (Figure 1), class distributions (Figure 2), and the
t-SNE of raw test pixels (Figure 3).

``ferflow tsne-raw`` computes the t-SNE coordinates once (CSV); ``ferflow plot-data tsne`` only plots
them, so a figure setting never recomputes the embedding. The distribution figure reads only the
stages' ``summary.json`` files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ferflow.classes import CLASS_NAMES
from ferflow.config import add_settings_argument, default
from ferflow.errors import FerflowError
from ferflow.storage import Split, load_split, read_json
from ferflow.tsne import read_coords


# --------------------------------------------------------------------------------------------- figures
def sample_grid(split: Split, per_class: int, seed: int, path: Path, dpi: int) -> None:
    """One row per class present, ``per_class`` seeded random faces each (Figure 1)."""
    from ferflow.plotting import plt, save_figure

    rng = np.random.default_rng(seed)
    present = [i for i in range(len(CLASS_NAMES)) if (split.labels == i).any()]
    if not present:
        raise FerflowError(f"{path}: no images to show")
    fig, axes = plt.subplots(len(present), per_class, figsize=(per_class * 0.9, len(present) * 0.95), squeeze=False)
    for row, label in enumerate(present):
        members = np.flatnonzero(split.labels == label)
        chosen = np.sort(rng.choice(members, size=min(per_class, len(members)), replace=False))
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col < len(chosen):
                image = split.images[chosen[col]]
                ax.imshow(image, cmap=None if image.ndim == 3 else "gray", vmin=0, vmax=255)
        axes[row][0].set_ylabel(CLASS_NAMES[label], rotation=0, ha="right", va="center", fontsize=9)
    fig.subplots_adjust(wspace=0.04, hspace=0.04)
    save_figure(fig, path, dpi)


def distribution_plot(summaries: list[tuple[str, dict]], path: Path, dpi: int) -> None:
    """Images per class: training split at each stage (grouped bars), and the test split (Figure 2)."""
    from ferflow.plotting import class_color, plt, save_figure

    x = np.arange(len(CLASS_NAMES))
    fig, (ax_train, ax_test) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [2, 1]})
    width = 0.8 / len(summaries)
    shades = np.linspace(0.35, 1.0, len(summaries))
    for k, (name, summary) in enumerate(summaries):
        counts = [summary["train"].get(c, 0) for c in CLASS_NAMES]
        bars = ax_train.bar(
            x + (k - (len(summaries) - 1) / 2) * width,
            counts,
            width,
            label=name,
            color=[class_color(c) for c in CLASS_NAMES],
            alpha=float(shades[k]),
            edgecolor="black",
            linewidth=0.4,
        )
        ax_train.bar_label(bars, fontsize=6, rotation=90, padding=2)
    test = [summaries[-1][1]["test"].get(c, 0) for c in CLASS_NAMES]
    bars = ax_test.bar(x, test, 0.6, color=[class_color(c) for c in CLASS_NAMES], edgecolor="black", linewidth=0.4)
    ax_test.bar_label(bars, fontsize=7, padding=2)
    for ax, title in ((ax_train, "Training split per stage"), (ax_test, "Test split")):
        ax.set_xticks(x, CLASS_NAMES, rotation=30)
        ax.set_ylabel("images")
        ax.set_title(title)
        ax.margins(y=0.15)
        ax.spines[["top", "right"]].set_visible(False)
    fig.legend(
        *ax_train.get_legend_handles_labels(),
        title="training split at stage (bars left to right)",
        fontsize="small",
        frameon=False,
        ncol=len(summaries),
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
    )
    save_figure(fig, path, dpi)


def tsne_plot(coords: np.ndarray, labels: np.ndarray, title: str, path: Path, dpi: int) -> None:
    """Scatter of 2-D t-SNE coordinates coloured by class (Figure 3)."""
    from ferflow.plotting import new_figure, save_figure, scatter_by_class

    fig, ax = new_figure(6.5, 5)
    scatter_by_class(ax, coords, labels, size=5)
    ax.set_title(f"{title} (n = {len(labels)})")
    save_figure(fig, path, dpi)


# --------------------------------------------------------------------------------------------- commands
def _summary_arg(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, Path(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="figure", required=True)
    samples = sub.add_parser("samples", help="sample faces per class from a split file (Figure 1)")
    samples.add_argument("--split", required=True, help="split file (.npz), e.g. the raw stage's train.npz")
    samples.add_argument("--seed", type=int, default=default("seed"), help="seed of the choice of faces")
    dist = sub.add_parser("distribution", help="class distributions of data stages from their summary.json (Figure 2)")
    dist.add_argument(
        "--summary",
        type=_summary_arg,
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="a stage's summary.json, in stage order (repeat)",
    )
    tsne = sub.add_parser("tsne", help="plot t-SNE coordinates written by tsne-raw or embed (Figure 3)")
    tsne.add_argument("--coords", required=True, help="CSV with columns index,label,class,x,y")
    tsne.add_argument("--title", default="t-SNE of raw test pixels", help="figure title")
    for p in (samples, dist, tsne):
        p.add_argument("--out", required=True, help="figure path (.png, .svg or .pdf)")
        add_settings_argument(p, "plot-data")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.figure == "samples":
        sample_grid(load_split(args.split), args.settings["samples_per_class"], args.seed, out, args.settings["dpi"])
    elif args.figure == "distribution":
        summaries = [(name, read_json(path)) for name, path in args.summary]
        for (_, summary), (_, path) in zip(summaries, args.summary):
            if not isinstance(summary, dict) or not {"train", "test"} <= set(summary):
                raise FerflowError(f"{path}: not a data stage summary (needs train and test)")
        distribution_plot(summaries, out, args.settings["dpi"])
    else:
        coords, labels = read_coords(args.coords)
        tsne_plot(coords, labels, args.title, out, args.settings["dpi"])
    print(f"wrote {out}")
    return 0
