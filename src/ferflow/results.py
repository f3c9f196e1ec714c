"""Readers of a run's result files (history.csv, metrics.json), shared by figures, tables and the report.

A run lives in ``.../runs/<model>/<experiment>/``; :func:`run_of` recovers both names from the path of
any file in it, so the commands take plain file lists.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from ferflow.classes import CLASS_NAMES
from ferflow.errors import FerflowError
from ferflow.storage import read_json

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_macro_f1")
METRICS_KEYS = ("accuracy", "macro_f1", "per_class", "confusion")


def run_of(path: str | os.PathLike[str]) -> tuple[str, str]:
    """``(model, experiment)`` of a file inside ``runs/<model>/<experiment>/``."""
    parent = Path(path).parent
    return parent.parent.name, parent.name


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
    unknown = sorted(set(metrics["per_class"]) - set(CLASS_NAMES))
    if unknown:
        raise FerflowError(f"{path}: metrics name unknown classes {', '.join(unknown)}")
    return metrics
