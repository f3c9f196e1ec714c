"""``ferflow select-final``: an architecture's best sweep experiment by val macro-F1 (``finals: auto``).

Each experiment scores the highest ``val_macro_f1`` of its history.csv (the epoch best.pt keeps);
ties go to the experiment listed first. The output JSON names the choice and carries the settings the
final run trains with: the chosen experiment's merged settings, ``epochs`` replaced by ``--epochs``.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path
from typing import Any

from ferflow.errors import FerflowError
from ferflow.storage import parse_json_object, write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="architecture name (recorded in the output)")
    parser.add_argument("--histories", required=True, nargs="+", type=Path, help="history.csv of each sweep experiment")
    parser.add_argument("--experiments", required=True, nargs="+", help="experiment names, in the order of --histories")
    parser.add_argument("--settings", required=True, help="JSON object: experiment name → merged training settings")
    parser.add_argument("--epochs", type=int, help="epochs of the final run (default: the chosen experiment's)")
    parser.add_argument("--out", required=True, type=Path, help="selection JSON to write")


def best_macro_f1(path: Path) -> tuple[float, int]:
    """(highest val macro-F1, its epoch) of a history.csv."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise FerflowError(f"{path}: history not found") from None
    if not rows or "val_macro_f1" not in rows[0]:
        raise FerflowError(f"{path}: no epochs with a val_macro_f1 column")
    try:
        scored = [(float(r["val_macro_f1"]), int(r["epoch"])) for r in rows]
    except (TypeError, ValueError):
        raise FerflowError(f"{path}: non-numeric epoch or val_macro_f1") from None
    if any(math.isnan(f1) for f1, _ in scored):
        raise FerflowError(f"{path}: val_macro_f1 is NaN")
    return max(scored, key=lambda s: (s[0], -s[1]))


def select(model: str, histories: list[Path], experiments: list[str], settings: dict[str, Any], epochs: int | None) -> dict[str, Any]:
    """The selection record for ``model``."""
    if len(histories) != len(experiments):
        raise FerflowError(f"{len(histories)} histories but {len(experiments)} experiment names")
    missing = [e for e in experiments if e not in settings]
    if missing:
        raise FerflowError(f"--settings lacks experiment(s) {', '.join(missing)}")
    scores = {name: best_macro_f1(path) for name, path in zip(experiments, histories)}
    chosen = max(experiments, key=lambda e: (scores[e][0], -experiments.index(e)))
    final = dict(settings[chosen])
    if epochs is not None:
        final["epochs"] = epochs
    return {
        "model": model,
        "experiment": chosen,
        "val_macro_f1": scores[chosen][0],
        "epoch": scores[chosen][1],
        "candidates": {e: {"val_macro_f1": f1, "epoch": ep} for e, (f1, ep) in scores.items()},
        "settings": final,
    }


def run(args: argparse.Namespace) -> int:
    settings = parse_json_object(args.settings, "--settings")
    record = select(args.model, args.histories, args.experiments, settings, args.epochs)
    write_json(args.out, record)
    print(f"{args.model}: chose {record['experiment']} (val macro-F1 {record['val_macro_f1']:.4f} at epoch {record['epoch']})")
    return 0
