"""Tables 1 and 2 of the study (each architecture's sweep) and the finals table, as CSV and Markdown.

Sweep tables (``sweep_<model>``): one row per experiment with the validation accuracy, macro-F1 and the
happy and disgust F1 at the epoch of best validation macro-F1 (from history.csv; the best checkpoint is
saved at that epoch). The runs of the ``--baseline`` architectures (the VGG16 transfer baseline) are
appended to every other architecture's table, as in the study. The finals table: test accuracy,
macro-F1, per-class F1 and parameter count of each run given by ``--metrics`` (from metrics.json).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

from ferflow.classes import CLASS_NAMES
from ferflow.results import best_epoch, read_history, read_metrics, run_of, val_class_f1
from ferflow.storage import atomic_path, write_text

SWEEP_COLUMNS = {
    "model": "Model", "experiment": "Experiment", "best_epoch": "Best epoch", "epochs": "Epochs",
    "val_acc": "Val accuracy", "val_macro_f1": "Val macro-F1", "val_f1_happy": "Happy F1", "val_f1_disgust": "Disgust F1",
}
FINALS_COLUMNS = {
    "model": "Model", "experiment": "Run", "parameters": "Parameters", "test_acc": "Test accuracy",
    "test_macro_f1": "Test macro-F1", **{f"test_f1_{name}": f"F1 {name}" for name in CLASS_NAMES},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder for sweep_<model>.{csv,md} and finals.{csv,md}")
    parser.add_argument("--histories", nargs="*", default=[], help="history.csv of every sweep run")
    parser.add_argument("--metrics", nargs="*", default=[], help="metrics.json of every run in the finals table")
    parser.add_argument("--baseline", nargs="*", default=[], help="architectures whose runs join every sweep table")


def sweep_row(path: str | os.PathLike[str]) -> dict[str, object]:
    """One experiment's row: validation scores at its best epoch (by validation macro-F1)."""
    history = read_history(path)
    best = best_epoch(history)
    model, experiment = run_of(path)
    return {
        "model": model, "experiment": experiment, "best_epoch": int(best["epoch"]), "epochs": int(history["epoch"].max()),
        "val_acc": float(best["val_acc"]), "val_macro_f1": float(best["val_macro_f1"]),
        "val_f1_happy": val_class_f1(best, "happy"), "val_f1_disgust": val_class_f1(best, "disgust"),
    }


def finals_row(path: str | os.PathLike[str]) -> dict[str, object]:
    """One run's test scores and size."""
    metrics = read_metrics(path)
    model, experiment = run_of(path)
    return {
        "model": metrics.get("arch", model), "experiment": experiment, "parameters": metrics.get("parameters"),
        "test_acc": metrics["accuracy"], "test_macro_f1": metrics["macro_f1"],
        **{f"test_f1_{name}": metrics["per_class"].get(name, {}).get("f1") for name in CLASS_NAMES},
    }


def sweep_tables(histories: list[str], baseline: list[str]) -> dict[str, pd.DataFrame]:
    """``{model: table}`` for every architecture among ``histories``, baseline rows appended to the others."""
    frame = pd.DataFrame([sweep_row(p) for p in histories], columns=list(SWEEP_COLUMNS))
    base = frame[frame["model"].isin(baseline)]
    tables = {}
    for model in dict.fromkeys(frame["model"]):
        own = frame[frame["model"] == model]
        tables[model] = own if model in baseline else pd.concat([own, base], ignore_index=True)
    return {m: t.reset_index(drop=True) for m, t in tables.items()}


def finals_table(metrics_paths: list[str]) -> pd.DataFrame:
    return pd.DataFrame([finals_row(p) for p in metrics_paths], columns=list(FINALS_COLUMNS))


def to_markdown(frame: pd.DataFrame, headers: dict[str, str], title: str) -> str:
    """A titled pipe table: scores with 4 decimals, parameter counts with thousands separators."""

    def cell(column: str, value: object) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return "–"
        if column == "parameters":
            return f"{int(value):,}"
        if isinstance(value, float):
            return f"{value:.4f}"
        return str(value)

    lines = [f"## {title}", "", "| " + " | ".join(headers[c] for c in frame.columns) + " |",
             "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(frame[c]) else "---" for c in frame.columns) + "|"]
    lines += ["| " + " | ".join(cell(c, row[c]) for c in frame.columns) + " |" for _, row in frame.iterrows()]
    return "\n".join(lines) + "\n"


def write_table(out_dir: Path, name: str, frame: pd.DataFrame, headers: dict[str, str], title: str) -> None:
    """``<name>.csv`` (machine-readable columns) and ``<name>.md`` (titled, formatted), atomically."""
    with atomic_path(out_dir / f"{name}.csv") as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    write_text(out_dir / f"{name}.md", to_markdown(frame, headers, title))
    print(f"wrote {out_dir / name}.csv and .md ({len(frame)} rows)")


def run(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    tables = sweep_tables(args.histories, args.baseline) if args.histories else {}
    finals = finals_table(args.metrics)
    for model, frame in tables.items():
        write_table(out_dir, f"sweep_{model}", frame, SWEEP_COLUMNS,
                    f"{model} sweep: validation scores at the best epoch (by val macro-F1)")
    write_table(out_dir, "finals", finals, FINALS_COLUMNS, "Final models: test scores")
    return 0
