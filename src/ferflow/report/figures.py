"""Figures of the study, drawn from result files only (never from checkpoints or datasets).

``ferflow plot-run`` draws one run's figures: training curves (loss, accuracy, validation macro-F1;
Figure 4 of the study), per-class precision/recall/F1 bars on the test split (Figures 7–10, 15–18;
from metrics.json, the same evaluation as the confusion matrix), the confusion matrix as counts and
row-normalised, and the t-SNE of the penultimate embeddings (Figures 11–12, 19–20).

``ferflow plot-study sweep`` draws an architecture's sweep: validation accuracy and macro-F1 per epoch,
one line per experiment, the mean over its seeds with a band from the lowest to the highest seed
(Figures 5–6, 13–14). ``ferflow plot-study params`` plots test accuracy and macro-F1 against parameter
count (recorded in metrics.json by ``ferflow evaluate``): one small dot per seed, and per experiment its
mean with an error bar of one standard deviation.

The format follows the output suffix (png, svg, pdf); ``--dpi`` sets the resolution.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ferflow.classes import CLASS_NAMES
from ferflow.config import add_settings_argument
from ferflow.errors import FerflowError
from ferflow.layout import FINAL, run_of
from ferflow.plotting import plt, save_figure, scatter_by_class
from ferflow.results import best_epoch, read_history, read_metrics
from ferflow.tsne import read_coords

SCORE_COLORS = {"precision": "#4c72b0", "recall": "#dd8452", "f1": "#55a868"}
SPLIT_STYLES = {"train": "--", "val": "-"}


def add_arguments_plot_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--history", help="the run's history.csv (for --curves)")
    parser.add_argument("--metrics", help="the run's metrics.json (for --per-class and --confusion)")
    parser.add_argument("--tsne", help="the run's t-SNE coordinates CSV (for --tsne-figure)")
    parser.add_argument("--curves", help="output: loss / accuracy / macro-F1 curves")
    parser.add_argument("--per-class", help="output: per-class precision / recall / F1 bars")
    parser.add_argument("--confusion", help="output: confusion matrix heatmaps")
    parser.add_argument("--tsne-figure", help="output: embedding t-SNE scatter")
    parser.add_argument("--title", default="", help="figure title prefix (default: <model>/<experiment>)")
    add_settings_argument(parser, "plot-run")


def add_arguments_plot_study(parser: argparse.ArgumentParser) -> None:
    kinds = parser.add_subparsers(dest="kind", required=True)
    sweep = kinds.add_parser("sweep", help="validation curves of an architecture's sweep experiments")
    sweep.add_argument(
        "histories", nargs="+", help="history.csv of every seed of each experiment (runs/<m>/<e>/seed<k>/)"
    )
    params = kinds.add_parser("params", help="test accuracy and macro-F1 against parameter count")
    params.add_argument("metrics", nargs="+", help="metrics.json of every run (runs/<m>/<e>/seed<k>/)")
    time = kinds.add_parser("time", help="validation scores against training wall minutes, one line per run")
    time.add_argument("histories", nargs="+", help="history.csv of every run (runs/<m>/<e>/seed<k>/)")
    for sub in (sweep, params, time):
        sub.add_argument("--out", required=True, help="figure to write (png, svg or pdf)")
        sub.add_argument("--title", default="", help="figure title (default: one naming the architecture or study)")
        add_settings_argument(sub, "plot-study")


def percent_tick(value: float, _position: int | None = None) -> str:
    """A score's tick label in percent: 0.55 as 55, 0.605 as 60.5."""
    return f"{100 * value:.4g}"


def percent_axis(ax: plt.Axes) -> None:
    """A y axis of scores kept as fractions in [0, 1] but labelled in percent (55, not 0.55), as every table
    gives them; the title or label says "(%)"."""
    ax.yaxis.set_major_formatter(FuncFormatter(percent_tick))


def epoch_axis(ax: plt.Axes, last_epoch: int) -> None:
    """An x axis of whole epochs from 1 to ``last_epoch`` (readable even for a single epoch)."""
    ax.set_xlim(0.5, last_epoch + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel("epoch")


def curves_figure(history: pd.DataFrame, title: str) -> plt.Figure:
    """Loss, accuracy (train and val) and val macro-F1 (%) per epoch; the best epoch (val macro-F1) marked."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    best = int(best_epoch(history)["epoch"])
    panels = [
        ("loss", "Loss", ["train", "val"]),
        ("acc", "Accuracy (%)", ["train", "val"]),
        ("macro_f1", "Macro-F1 (%)", ["val"]),
    ]
    for ax, (key, label, splits) in zip(axes, panels):
        for split in splits:
            ax.plot(
                history["epoch"], history[f"{split}_{key}"], SPLIT_STYLES[split], marker="o", markersize=3, label=split
            )
        ax.axvline(best, color="0.6", linestyle=":", linewidth=1, label=f"best epoch ({best})")
        epoch_axis(ax, int(history["epoch"].max()))
        if key != "loss":
            percent_axis(ax)
        ax.set_title(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def per_class_figure(metrics: dict[str, Any], title: str) -> plt.Figure:
    """Grouped precision / recall / F1 bars (%) per class (test split), with each class's support."""
    fig, ax = plt.subplots(figsize=(9, 3.8))
    classes = list(metrics["per_class"])  # the scored classes, in the model's order
    x = np.arange(len(classes))
    width = 0.27
    for k, (score, color) in enumerate(SCORE_COLORS.items()):
        values = [metrics["per_class"][name][score] for name in classes]
        ax.bar(x + (k - 1) * width, values, width, label=score, color=color)
    supports = [metrics["per_class"][name]["support"] for name in classes]
    ax.set_xticks(x, [f"{name}\n(n={n})" for name, n in zip(classes, supports)])
    ax.set_ylim(0, 1)
    percent_axis(ax)
    ax.set_ylabel("score (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(ncols=3, fontsize="small", frameon=False, loc="upper center", bbox_to_anchor=(0.5, 1.12))
    accuracy, macro_f1 = 100 * metrics["accuracy"], 100 * metrics["macro_f1"]
    ax.set_title(f"{title}: test accuracy {accuracy:.1f} %, macro-F1 {macro_f1:.1f} %", pad=22)
    fig.tight_layout()
    return fig


def confusion_figure(metrics: dict[str, Any], title: str) -> plt.Figure:
    """The confusion matrix as counts and row-normalised (recall on the diagonal), side by side."""
    counts = np.asarray(metrics["confusion"], dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    normalized = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5.2))
    panels = ((axes[0], counts, "counts", "{:.0f}"), (axes[1], normalized, "row-normalised", "{:.2f}"))
    for ax, matrix, label, fmt in panels:
        image = ax.imshow(matrix, cmap="Blues", vmin=0)
        top = matrix.max() if matrix.max() > 0 else 1
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                ax.text(
                    j,
                    i,
                    fmt.format(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if matrix[i, j] > 0.6 * top else "black",
                )
        predicted = metrics.get("classes", CLASS_NAMES)  # columns: the model's classes; rows: the scored ones
        ax.set_xticks(range(len(predicted)), predicted, rotation=45, ha="right")
        ax.set_yticks(range(matrix.shape[0]), metrics.get("scored_classes", predicted))
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(label)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(f"{title}: confusion matrix (test)")
    fig.tight_layout()
    return fig


def tsne_figure(coordinates: tuple[np.ndarray, np.ndarray], title: str) -> plt.Figure:
    """The t-SNE coordinates of a run's penultimate embeddings, coloured by true class."""
    coords, labels = coordinates
    fig, ax = plt.subplots(figsize=(6.5, 5))
    scatter_by_class(ax, coords, labels, size=6.0)
    ax.set_title(f"{title}: t-SNE of penultimate features ({len(labels)} test images)")
    fig.tight_layout()
    return fig


def sweep_figure(histories: list[str], title: str) -> plt.Figure:
    """Validation accuracy and macro-F1 (%) per epoch of each experiment: the mean over its seeds (runs that
    stopped early count until their last epoch) and the band between the lowest and highest seed."""
    runs: dict[str, list[pd.DataFrame]] = {}
    for path in histories:
        runs.setdefault(run_of(path).experiment, []).append(read_history(path))
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    last_epoch = 1
    for experiment, frames in runs.items():
        stacked = pd.concat(frames).groupby("epoch")
        last_epoch = max(last_epoch, max(int(f["epoch"].max()) for f in frames))
        for ax, key in zip(axes, ("val_acc", "val_macro_f1")):
            values = stacked[key]
            (line,) = ax.plot(
                values.mean().index,
                values.mean(),
                marker="o",
                markersize=3,
                label=f"{experiment} ({len(frames)} seed{'s' if len(frames) > 1 else ''})",
            )
            if len(frames) > 1:
                ax.fill_between(
                    values.min().index, values.min(), values.max(), color=line.get_color(), alpha=0.15, linewidth=0
                )
    for ax, label in zip(axes, ("Validation accuracy", "Validation macro-F1")):
        ax.set_title(f"{label} (%; mean, band: min–max over seeds)")
        epoch_axis(ax, last_epoch)
        percent_axis(ax)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize="small", frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def time_curve(history: pd.DataFrame) -> pd.DataFrame:
    """A run's validation scores against its cumulative training wall minutes (each epoch's seconds include its
    validation), from ``history.csv``."""
    return pd.DataFrame(
        {
            "epoch": history["epoch"],
            "minutes": history["epoch_seconds"].cumsum() / 60.0,
            "val_acc": history["val_acc"],
            "val_macro_f1": history["val_macro_f1"],
        }
    )


def time_figure(curves: dict[str, pd.DataFrame], title: str) -> plt.Figure:
    """Time to accuracy: validation accuracy and macro-F1 (%) against training wall minutes, one line per run
    (``curves``: label → :func:`time_curve`)."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for label, curve in curves.items():
        for ax, key in zip(axes, ("val_acc", "val_macro_f1")):
            ax.plot(curve["minutes"], 100 * curve[key], marker="o", markersize=2.5, label=label)
    for ax, label in zip(axes, ("Validation accuracy (%)", "Validation macro-F1 (%)")):
        ax.set_title(label)
        ax.set_xlabel("training wall time (minutes)")
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize="small", frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def params_figure(metrics_paths: list[str], title: str) -> plt.Figure:
    """Test accuracy and macro-F1 (%) against parameter count (log scale): a small dot per seed, and per
    experiment its mean with a ±1 std error bar. Colour: architecture; marker: star for finals, circle
    for sweep experiments."""
    rows = []
    for path in metrics_paths:
        metrics = read_metrics(path)
        run = run_of(path)
        if "parameters" not in metrics:
            raise FerflowError(f"{path}: metrics lack the key parameters (re-run ferflow evaluate)")
        rows.append(
            {
                "arch": metrics.get("arch", run.model),
                "experiment": run.experiment,
                "parameters": metrics["parameters"],
                "accuracy": metrics["accuracy"],
                "macro_f1": metrics["macro_f1"],
            }
        )
    frame = pd.DataFrame(rows)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, key, label in ((axes[0], "accuracy", "Test accuracy"), (axes[1], "macro_f1", "Test macro-F1")):
        for k, (arch, group) in enumerate(frame.groupby("arch", sort=False)):
            color = colors[k % len(colors)]
            ax.scatter(group["parameters"], group[key], color=color, marker=".", s=18, alpha=0.5)
            means = (
                group.groupby("experiment", sort=False)
                .agg(parameters=("parameters", "first"), mean=(key, "mean"), std=(key, "std"))
                .fillna(0.0)
            )
            final = means.index == FINAL
            for is_final, marker, size, kind in ((False, "o", 6, "sweep"), (True, "*", 14, "final")):
                chosen = means[final == is_final]
                if len(chosen):
                    ax.errorbar(
                        chosen["parameters"],
                        chosen["mean"],
                        yerr=chosen["std"],
                        fmt=marker,
                        color=color,
                        markersize=size,
                        markeredgecolor="black" if is_final else color,
                        markeredgewidth=0.5,
                        capsize=3,
                        alpha=0.85,
                        label=f"{arch} {kind}",
                    )
            top = means.loc[means["mean"].idxmax()]
            ax.annotate(
                f"{arch}\n{int(top['parameters']):,}",
                (top["parameters"], top["mean"]),
                textcoords="offset points",
                xytext=(8, 4),
                fontsize=8,
            )
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
        ax.set_title(f"{label} (%; dots: seeds; bars: mean ± std)")
        percent_axis(ax)
        ax.grid(alpha=0.3, which="both")
        ax.margins(x=0.3, y=0.15)
    axes[1].legend(fontsize="small", frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _require(value: str | None, option: str, needed_for: str) -> str:
    if not value:
        raise FerflowError(f"{needed_for} needs {option}")
    return value


def run_title(path: str) -> str:
    """``<model>/<experiment>/seed<k>`` of a file in a run folder, else the name of its folder."""
    try:
        return run_of(path).name
    except FerflowError:
        return Path(path).parent.name


def run_plot_run(args: argparse.Namespace) -> int:
    """Read every needed input first (so a bad one leaves no figure behind), then draw each requested figure."""
    source = args.history or args.metrics or args.tsne
    title = args.title or (run_title(source) if source else "")
    history = read_history(_require(args.history, "--history", "--curves")) if args.curves else None
    needs_metrics = args.per_class or args.confusion
    metrics = read_metrics(_require(args.metrics, "--metrics", "--per-class/--confusion")) if needs_metrics else None
    coords = read_coords(_require(args.tsne, "--tsne", "--tsne-figure")) if args.tsne_figure else None
    jobs = [
        (args.curves, lambda: curves_figure(history, title)),
        (args.per_class, lambda: per_class_figure(metrics, title)),
        (args.confusion, lambda: confusion_figure(metrics, title)),
        (args.tsne_figure, lambda: tsne_figure(coords, title)),
    ]
    for out, draw in jobs:
        if out:
            _save(draw(), out, args.settings["dpi"])
    return 0


def run_plot_study(args: argparse.Namespace) -> int:
    if args.kind == "sweep":
        fig = sweep_figure(args.histories, args.title or f"{run_of(args.histories[0]).model} sweep")
    elif args.kind == "time":
        curves = {run_title(path): time_curve(read_history(path)) for path in args.histories}
        fig = time_figure(curves, args.title or "Time to accuracy")
    else:
        fig = params_figure(args.metrics, args.title or "Test scores against model size")
    _save(fig, args.out, args.settings["dpi"])
    return 0


def _save(fig: plt.Figure, out: str, dpi: int) -> None:
    try:
        save_figure(fig, out, dpi)
    except ValueError as exc:
        raise FerflowError(str(exc)) from None
    print(f"wrote {out}")
