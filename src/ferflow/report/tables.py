"""Tables 1 and 2 of the study (each architecture's sweep), the finals table and the per-seed detail table,
as CSV and Markdown. Each experiment is trained once per seed; its row gives the mean ± standard
deviation over its seeds and how many of them collapsed (:func:`ferflow.results.collapse_reason`).

Sweep tables (``sweep_<model>``): one row per experiment with the validation accuracy, macro-F1 and
the happy and disgust F1 at each seed's best epoch (by val macro-F1, the epoch best.pt keeps, from
history.csv) and the test accuracy and macro-F1 of best.pt (metrics.json). The runs of the
``--baseline`` architectures (the VGG16 transfer baseline) are appended to every other architecture's
table, as in the study. The finals table: every final and baseline experiment with its parameter
count, val and test scores and per-class test F1. ``seeds``: one row per run, the values behind every
mean, with the dead-unit fraction, the most predicted val class and why a run counts as collapsed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ferflow.classes import CLASS_NAMES
from ferflow.layout import FINAL
from ferflow.results import run_record
from ferflow.storage import atomic_path, write_text

SCORES = {
    "val_acc": "Val accuracy",
    "val_macro_f1": "Val macro-F1",
    "val_f1_happy": "Happy F1 (val)",
    "val_f1_disgust": "Disgust F1 (val)",
    "test_acc": "Test accuracy",
    "test_macro_f1": "Test macro-F1",
    **{f"test_f1_{name}": f"F1 {name}" for name in CLASS_NAMES},
}
"""Every score column that is averaged over seeds, with its heading."""
SWEEP_SCORES = ["val_acc", "val_macro_f1", "val_f1_happy", "val_f1_disgust", "test_acc", "test_macro_f1"]
FINALS_SCORES = ["val_acc", "val_macro_f1", "test_acc", "test_macro_f1", *(f"test_f1_{n}" for n in CLASS_NAMES)]
GROUP_COLUMNS = {
    "model": "Model",
    "experiment": "Experiment",
    "parameters": "Parameters",
    "seeds": "Seeds",
    "collapsed": "Collapsed",
    "epochs": "Epochs",
}
SEED_COLUMNS = {
    "model": "Model",
    "experiment": "Experiment",
    "seed": "Seed",
    "best_epoch": "Best epoch",
    "epochs": "Epochs",
    "val_acc": "Val accuracy",
    "val_macro_f1": "Val macro-F1",
    "test_acc": "Test accuracy",
    "test_macro_f1": "Test macro-F1",
    "val_dead_units": "Dead units (val)",
    "val_top_class": "Top class (val)",
    "val_top_share": "Top-class share (val)",
    "collapsed": "Collapsed",
    "collapse": "Why collapsed",
}
SWEEP_COLUMNS = ["model", "experiment", "seeds", "collapsed", "epochs", *SWEEP_SCORES]
FINALS_COLUMNS = ["model", "experiment", "parameters", "seeds", "collapsed", *FINALS_SCORES]


def headers() -> dict[str, str]:
    """The heading of every column of every table (scores as ``<score>_mean`` and ``<score>_std``)."""
    names = {**GROUP_COLUMNS, **SEED_COLUMNS}
    for score, title in SCORES.items():
        names[f"{score}_mean"], names[f"{score}_std"] = title, f"{title} std"
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", required=True, type=Path, help="folder for sweep_<model>, finals and seeds (.csv and .md)"
    )
    parser.add_argument(
        "--runs",
        nargs="+",
        required=True,
        type=Path,
        help="run folders runs/<model>/<experiment>/seed<k>/ (history.csv, metrics.json, val_metrics.json)",
    )
    parser.add_argument("--baseline", nargs="*", default=[], help="architectures whose runs join every sweep table")


def seed_table(runs: list[Path]) -> pd.DataFrame:
    """One row per run, in the order given."""
    return pd.DataFrame([run_record(run) for run in runs])


def aggregate(seeds: pd.DataFrame, scores: list[str], columns: list[str]) -> pd.DataFrame:
    """One row per (model, experiment), in order of appearance: seed and collapse counts, the largest epoch
    count, parameters, and each score's mean and sample standard deviation over the seeds (NaN for one seed)."""
    groups = seeds.groupby(["model", "experiment"], sort=False)
    frame = groups.agg(
        seeds=("seed", "size"),
        collapsed=("collapsed", "sum"),
        epochs=("epochs", "max"),
        parameters=("parameters", "first"),
    ).reset_index()
    for score in scores:
        values = groups[score].agg(["mean", "std"]).reset_index(drop=True)
        frame[f"{score}_mean"], frame[f"{score}_std"] = values["mean"], values["std"]
    order = [c for c in columns if c not in scores]
    return frame[order + [f"{s}_{k}" for s in scores for k in ("mean", "std")]]


def sweep_tables(seeds: pd.DataFrame, baseline: list[str]) -> dict[str, pd.DataFrame]:
    """``{model: table}`` for every architecture with sweep runs, baseline rows appended to the others."""
    sweep = aggregate(seeds[seeds["experiment"] != FINAL], SWEEP_SCORES, SWEEP_COLUMNS)
    base = sweep[sweep["model"].isin(baseline)]
    tables = {}
    for model in dict.fromkeys(sweep["model"]):
        own = sweep[sweep["model"] == model]
        tables[model] = own if model in baseline else pd.concat([own, base], ignore_index=True)
    return {m: t.reset_index(drop=True) for m, t in tables.items()}


def finals_table(seeds: pd.DataFrame, baseline: list[str]) -> pd.DataFrame:
    """Every final, then every experiment of the baseline architectures."""
    rows = seeds[(seeds["experiment"] == FINAL) | seeds["model"].isin(baseline)]
    rows = pd.concat([rows[rows["experiment"] == FINAL], rows[rows["experiment"] != FINAL]])
    return aggregate(rows, FINALS_SCORES, FINALS_COLUMNS)


def to_markdown(frame: pd.DataFrame, title: str) -> str:
    """A titled pipe table: ``mean ± std`` scores with 4 decimals, parameter counts with thousands
    separators, ``k of n`` collapsed seeds."""
    names = headers()
    columns = [c for c in frame.columns if not c.endswith("_std")]

    def cell(row: pd.Series, column: str) -> str:
        value = row[column]
        if column == "collapsed":
            return f"{int(value)} of {int(row['seeds'])}" if "seeds" in row else ("yes" if value else "no")
        if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
            return "–"
        if column == "parameters":
            return f"{int(value):,}"
        if column.endswith("_mean"):
            spread = row[column[: -len("_mean")] + "_std"]
            return f"{value:.4f}" + ("" if pd.isna(spread) else f" ± {spread:.4f}")
        if isinstance(value, float):
            return f"{value:.4f}"
        return str(value)

    lines = [
        f"## {title}",
        "",
        "| " + " | ".join(names[c] for c in columns) + " |",
        "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(frame[c]) else "---" for c in columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(row, c) for c in columns) + " |" for _, row in frame.iterrows()]
    return "\n".join(lines) + "\n"


def write_table(out_dir: Path, name: str, frame: pd.DataFrame, title: str) -> None:
    """``<name>.csv`` (machine-readable columns) and ``<name>.md`` (titled, formatted), atomically."""
    with atomic_path(out_dir / f"{name}.csv") as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    write_text(out_dir / f"{name}.md", to_markdown(frame, title))
    print(f"wrote {out_dir / name}.csv and .md ({len(frame)} rows)")


def run(args: argparse.Namespace) -> int:
    seeds = seed_table(args.runs)
    tables = sweep_tables(seeds, args.baseline)
    finals = finals_table(seeds, args.baseline)
    n = seeds.groupby(["model", "experiment"]).size()
    over = f"mean ± std over {n.min()} seeds" if n.min() == n.max() else f"mean ± std over {n.min()}–{n.max()} seeds"
    for model, frame in tables.items():
        write_table(
            args.out,
            f"sweep_{model}",
            frame,
            f"{model} sweep: validation scores at the best epoch (by val macro-F1) and test scores, {over}",
        )
    write_table(args.out, "finals", finals, f"Final models: validation and test scores, {over}")
    write_table(
        args.out, "seeds", seeds[list(SEED_COLUMNS)], "Every run: scores, dead embedding units and collapse per seed"
    )
    return 0
