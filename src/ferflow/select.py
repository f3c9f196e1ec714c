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
import sys
from pathlib import Path
from typing import Any

from ferflow.errors import FerflowError
from ferflow.layout import RUN_FILES, run_of
from ferflow.results import best_epoch, read_history, scores_on_val
from ferflow.storage import copy_file, parse_json_object, write_json


def add_arguments_select_final(parser: argparse.ArgumentParser) -> None:
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


def add_arguments_deploy_seed(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs",
        required=True,
        nargs="+",
        type=Path,
        help="the seed folders of one final (runs/<model>/final/seed<k>/, with history.csv, "
        "val_metrics.json and best.pt)",
    )
    parser.add_argument("--out", required=True, type=Path, help="the deployed checkpoint to write (a copy of best.pt)")
    parser.add_argument("--record", required=True, type=Path, help="JSON recording the chosen seed and why")


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


def deployment_record(runs: list[Path]) -> dict[str, Any]:
    """What ``deploy-seed`` writes: the chosen seed, the reason, and every seed's validation record."""
    records = [scores_on_val(run) for run in runs]
    experiments = {(r["model"], r["experiment"]) for r in records}
    if len(experiments) != 1:
        raise FerflowError(f"--runs mix experiments: {', '.join(sorted('/'.join(e) for e in experiments))}")
    chosen, reason = choose_seed(records)
    keys = (
        "best_epoch",
        "val_acc",
        "val_macro_f1",
        "val_dead_units",
        "val_top_class",
        "val_top_share",
        "collapsed",
        "collapse",
    )
    return {
        "model": chosen["model"],
        "experiment": chosen["experiment"],
        "seed": chosen["seed"],
        "checkpoint": str(runs[records.index(chosen)] / RUN_FILES["best"]),
        "all_collapsed": all(r["collapsed"] for r in records),
        "reason": reason,
        "seeds": {str(r["seed"]): {k: r[k] for k in keys} for r in sorted(records, key=lambda r: r["seed"])},
    }


def run_select_final(args: argparse.Namespace) -> int:
    settings = parse_json_object(args.settings, "--settings")
    record = select(args.model, args.histories, settings, args.epochs)
    write_json(args.out, record)
    print(f"{args.model}: chose {record['experiment']} (mean val macro-F1 {record['val_macro_f1']:.4f})")
    return 0


def run_deploy_seed(args: argparse.Namespace) -> int:
    record = deployment_record(args.runs)
    source = Path(record["checkpoint"])
    if not source.is_file():
        raise FerflowError(f"{source}: checkpoint not found")
    copy_file(source, args.out)
    write_json(args.record, record)
    name = f"{record['model']}/{record['experiment']}"
    print(f"{name}: deployed seed {record['seed']} -> {args.out} ({record['reason']})")
    if record["all_collapsed"]:
        print(
            f"warning: every seed of {name} collapsed; the deployed model "
            "predicts essentially one class (see the README's known problems)",
            file=sys.stderr,
        )
    return 0
