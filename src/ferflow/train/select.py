"""Choices among runs, by validation scores only (never test numbers).

``ferflow select-final`` (``finals: auto``): an architecture's best sweep experiment by the mean over
its seeds of each run's highest ``val_macro_f1`` (the epoch best.pt keeps); ties go to the experiment
listed first. The output JSON names the choice and carries the settings the final trains with: the
chosen experiment's merged settings, ``epochs`` replaced by ``--epochs``.

``ferflow deploy-seed``: among a final's seeds, the one with the best val macro-F1 that did not collapse
(:func:`ferflow.results.collapse_reason`) becomes the architecture's deployed model: its best.pt is
copied to ``--out`` and ``--record`` says which seed and why, with every seed's val macro-F1 and
collapse. When every seed collapsed the best of them is deployed and the record and log say so.
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path
from typing import Any

from ferflow.errors import FerflowError
from ferflow.layout import run_of
from ferflow.results import best_epoch, read_history
from ferflow.storage import parse_json_object, write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="architecture name (recorded in the output)")
    parser.add_argument(
        "--histories",
        required=True,
        nargs="+",
        type=Path,
        help="history.csv of every seed of every sweep experiment (runs/<model>/<experiment>/seed<k>/)",
    )
    parser.add_argument("--settings", required=True, help="JSON object: experiment name → merged training settings")
    parser.add_argument("--epochs", type=int, help="epochs of the final run (default: the chosen experiment's)")
    parser.add_argument("--out", required=True, type=Path, help="selection JSON to write")


def best_macro_f1(path: Path) -> float:
    """The highest val macro-F1 of a history.csv (the epoch best.pt keeps)."""
    f1 = float(best_epoch(read_history(path))["val_macro_f1"])
    if math.isnan(f1):
        raise FerflowError(f"{path}: val_macro_f1 is NaN")
    return f1


def select(model: str, histories: list[Path], settings: dict[str, Any], epochs: int | None) -> dict[str, Any]:
    """The selection record for ``model``: its experiments ranked by mean val macro-F1 over their seeds."""
    per_seed: dict[str, dict[int, float]] = {}
    for path in histories:
        run = run_of(path)
        per_seed.setdefault(run.experiment, {})[run.seed] = best_macro_f1(path)
    missing = [e for e in per_seed if e not in settings]
    if missing:
        raise FerflowError(f"--settings lacks experiment(s) {', '.join(missing)}")
    means = {e: statistics.fmean(f1s.values()) for e, f1s in per_seed.items()}
    order = list(per_seed)
    chosen = max(order, key=lambda e: (means[e], -order.index(e)))
    final = dict(settings[chosen])
    if epochs is not None:
        final["epochs"] = epochs
    return {
        "model": model,
        "experiment": chosen,
        "val_macro_f1": means[chosen],
        "candidates": {
            e: {"val_macro_f1": means[e], "seeds": {str(s): f1 for s, f1 in sorted(per_seed[e].items())}} for e in order
        },
        "settings": final,
    }


def run(args: argparse.Namespace) -> int:
    settings = parse_json_object(args.settings, "--settings")
    record = select(args.model, args.histories, settings, args.epochs)
    write_json(args.out, record)
    print(f"{args.model}: chose {record['experiment']} (mean val macro-F1 {record['val_macro_f1']:.4f})")
    return 0
