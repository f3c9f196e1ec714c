"""Readers of a run's result files (history.csv, metrics.json, val_metrics.json), shared by figures,
tables, the report and the seed choice, and the one definition of a collapsed run.

A run lives in ``.../runs/<model>/<experiment>/seed<k>/`` (:mod:`ferflow.layout`); :func:`ferflow.layout.run_of`
recovers the run from the path of any file in it, so the commands take plain file lists.

Collapsed: at the epoch best.pt keeps, the run predicts essentially one class on val (one class gets at
least :data:`COLLAPSE_TOP_SHARE` of the predictions of best.pt, from val_metrics.json) or at least
:data:`COLLAPSE_DEAD_UNITS` of its embedding units are dead (``val_dead_units`` of history.csv).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ferflow.classes import CLASS_NAMES, KNOWN_CLASSES
from ferflow.errors import FerflowError
from ferflow.layout import RUN_FILES, run_of
from ferflow.storage import read_json

COLLAPSE_TOP_SHARE = 0.95
COLLAPSE_DEAD_UNITS = 0.9
HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_macro_f1")
METRICS_KEYS = ("accuracy", "macro_f1", "per_class", "confusion")


def read_history(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A run's history.csv (one row per epoch), checked for the columns the figures and tables use."""
    try:
        history = pd.read_csv(path)
    except FileNotFoundError:
        raise FerflowError(f"{path}: history not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise FerflowError(f"{path}: not a readable history CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
    if missing:
        raise FerflowError(f"{path}: history lacks columns {', '.join(missing)}")
    if history.empty:
        raise FerflowError(f"{path}: history has no epochs")
    return history


def best_epoch(history: pd.DataFrame) -> pd.Series:
    """The history row of the best validation macro-F1 (the earliest on ties)."""
    return history.loc[history["val_macro_f1"].idxmax()]


def val_class_f1(row: pd.Series, name: str) -> float:
    """The validation F1 of class ``name`` in a history row (NaN when the history does not record it)."""
    return float(row.get(f"val_f1_{name}", float("nan")))


def read_metrics(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run's metrics.json, checked for the keys the figures and tables use."""
    metrics = read_json(path)
    missing = [k for k in METRICS_KEYS if not isinstance(metrics, dict) or k not in metrics]
    if missing:
        raise FerflowError(f"{path}: metrics lack keys {', '.join(missing)}")
    unknown = sorted(set(metrics["per_class"]) - set(KNOWN_CLASSES))
    if unknown:
        raise FerflowError(f"{path}: metrics name unknown classes {', '.join(unknown)}")
    return metrics


def top_class_share(metrics: dict[str, Any]) -> tuple[str, float]:
    """The most predicted class of an evaluation and its share of all predictions (confusion columns)."""
    predicted = np.asarray(metrics["confusion"], dtype=float).sum(axis=0)
    top = int(predicted.argmax())
    return metrics.get("classes", CLASS_NAMES)[top], float(predicted[top] / max(predicted.sum(), 1.0))


def collapse_reason(dead_units: float, top_class: str, top_share: float) -> str:
    """Why a run counts as collapsed ("" when it does not): the package's one definition."""
    reasons = []
    if top_share >= COLLAPSE_TOP_SHARE:
        reasons.append(f"predicts {top_class} for {top_share:.0%} of val")
    if dead_units >= COLLAPSE_DEAD_UNITS:  # NaN (a history without the column) compares False
        reasons.append(f"{dead_units:.0%} of embedding units dead")
    return "; ".join(reasons)


def scores_on_val(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A run's validation record: scores at the best epoch (history.csv), the prediction share of its most
    predicted val class (val_metrics.json, the evaluation of best.pt on val) and whether it collapsed."""
    run_dir = Path(run_dir)
    run = run_of(run_dir)
    history = read_history(run_dir / RUN_FILES["history"])
    best = best_epoch(history)
    top_class, top_share = top_class_share(read_metrics(run_dir / RUN_FILES["val_metrics"]))
    dead = float(best.get("val_dead_units", float("nan")))
    reason = collapse_reason(dead, top_class, top_share)
    return {
        "model": run.model,
        "experiment": run.experiment,
        "seed": run.seed,
        "best_epoch": int(best["epoch"]),
        "epochs": int(history["epoch"].max()),
        "val_acc": float(best["val_acc"]),
        "val_macro_f1": float(best["val_macro_f1"]),
        "val_f1_happy": val_class_f1(best, "happy"),
        "val_f1_disgust": val_class_f1(best, "disgust"),
        "val_dead_units": dead,
        "val_top_class": top_class,
        "val_top_share": top_share,
        "collapsed": bool(reason),
        "collapse": reason,
    }


def scores_on_test(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A run's test record (metrics.json): accuracy, macro-F1, per-class F1 and parameter count."""
    metrics = read_metrics(Path(run_dir) / RUN_FILES["metrics"])
    return {
        "parameters": metrics.get("parameters"),
        "test_acc": float(metrics["accuracy"]),
        "test_macro_f1": float(metrics["macro_f1"]),
        **{f"test_f1_{name}": metrics["per_class"].get(name, {}).get("f1") for name in KNOWN_CLASSES},
    }


def run_record(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """:func:`scores_on_val` and :func:`scores_on_test` of one run."""
    return {**scores_on_val(run_dir), **scores_on_test(run_dir)}


def choose_seed(records: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The record (of :func:`ferflow.results.scores_on_val`) with the best val macro-F1 among the seeds
    that did not collapse (all seeds when every one collapsed; the lowest seed on ties), and the reason."""
    if not records:
        raise FerflowError("no runs to choose from")
    healthy = [r for r in records if not r["collapsed"]]
    pool = healthy or records
    chosen = max(pool, key=lambda r: (r["val_macro_f1"], -r["seed"]))
    n = len(records)
    if not healthy:
        reason = (
            f"all {n} seeds collapsed: seed {chosen['seed']} has the best val macro-F1 "
            f"({chosen['val_macro_f1']:.4f}) and is collapsed too ({chosen['collapse']})"
        )
    else:
        skipped = f"; {n - len(healthy)} of {n} seeds collapsed and were passed over" if len(healthy) < n else ""
        reason = f"best val macro-F1 ({chosen['val_macro_f1']:.4f}) among {len(healthy)} non-collapsed seed(s){skipped}"
    return chosen, reason
