"""ferflow deploy-seed: deploy a final's best non-collapsed seed as the architecture's best.pt."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ferflow.errors import FerflowError
from ferflow.layout import RUN_FILES
from ferflow.results import choose_seed, scores_on_val
from ferflow.storage import copy_file, write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
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
