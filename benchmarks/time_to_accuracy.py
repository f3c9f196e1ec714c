"""Time to accuracy: train recipes on the real model-input stage and record validation accuracy and macro-F1
against training wall time, side by side on one machine (issue 22).

A recipe is ``NAME=MODEL:DATA_DIR:CONFIG[,CONFIG...]``: the architecture, the data stage it trains on (the
folder holding train.npz and val.npz that the recipe's config builds), and the config files whose overlay
defines it (``config.yaml`` first, then presets, as ``snakemake --configfile`` overlays them); the run's
settings are the overlay's ``train`` section under ``models.<MODEL>.final``, exactly as the DAG trains the
final. Each recipe trains with ``ferflow train`` for at most ``--minutes`` of wall time (the job is stopped
there; its per-epoch history survives in ``last.pt``). A DAG run joins with ``--run
NAME=runs/<m>/<e>/seed<k>:DATA_DIR``, finished or cut short (its history then comes from ``last.pt``). Test
splits are never read here.

Writes ``<out>/time_to_accuracy.csv`` (one row per recipe and epoch: cumulative minutes, val accuracy and
macro-F1, the device the run trained on (GPU name or CPU kind) and the precision it computed in, as its
checkpoint records them, threads, training images a second), ``<out>/time_to_accuracy.png`` and, for each run cut
short, ``<out>/partial/<NAME>/history.csv``, and prints each recipe's best val scores and its minutes to reach
them.

    python benchmarks/time_to_accuracy.py --minutes 15 --out results/bench/tta \\
        --recipe study=resnet:results/fer2013/data/rgb:config.yaml,workflow/presets/fer2013-local.yaml \\
        --run fast=results/fer2013/runs/fernetfast/final/seed1:results/fer2013/data/balanced
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml
from snakemake.utils import update_config, validate

from ferflow import checkpoint
from ferflow.config import SCHEMA_PATH
from ferflow.device import cpu_kind
from ferflow.report.figures import time_curve, time_figure
from ferflow.storage import load_split
from ferflow.train.settings import expand_recipes, overlay

COLUMNS = [
    "recipe",
    "model",
    "epoch",
    "minutes",
    "val_acc",
    "val_macro_f1",
    "images_per_second",
    "amp",
    "threads",
    "device",
]


def recipe_settings(model: str, files: list[str]) -> dict[str, Any]:
    """The final's training settings of ``model`` under the overlay of config ``files`` (schema defaults filled)."""
    merged: dict[str, Any] = {}
    for name in files:
        update_config(merged, yaml.safe_load(Path(name).read_text()) or {})
    expand_recipes(merged)  # `recipe: <name>` of an experiment (config.yaml's recipes)
    validate(merged, str(SCHEMA_PATH))  # fills the schema's defaults
    final = merged["models"][model]["final"]
    if final is None:
        raise SystemExit(f"{files[-1]}: models.{model}.final is null: no final recipe to benchmark")
    return {k: v for k, v in overlay(merged["train"], final).items() if k not in ("device", "threads")}


def train(name: str, model: str, data_dir: Path, settings: dict[str, Any], args: argparse.Namespace) -> Path:
    """Run ``ferflow train`` for at most ``args.minutes``; the run folder (its last.pt holds the history)."""
    out = args.out / "runs" / name
    for stale in ("last.pt", "best.pt", "history.csv"):
        (out / stale).unlink(missing_ok=True)
    command = [
        *[sys.executable, "-m", "ferflow.cli", "train", "--model", model, "--experiment", name],
        *["--data-dir", str(data_dir), "--out", str(out), "--settings", json.dumps(settings)],
        *["--seed", str(args.seed), "--threads", str(args.threads), "--device", "cpu"],
    ]
    out.mkdir(parents=True, exist_ok=True)
    print(f"{name}: training {model} for at most {args.minutes} min: {' '.join(command[2:])}", flush=True)
    with open(out / "train.log", "w") as log:
        try:
            subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=args.minutes * 60, check=True)
        except subprocess.TimeoutExpired:
            print(f"{name}: stopped at the {args.minutes}-minute budget", flush=True)
    return out


def run_record(run: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The per-epoch history of a run folder and the checkpoint that says how it trained: history.csv and best.pt
    when it finished, else the history saved in last.pt and last.pt."""
    if (run / "history.csv").exists():
        return pd.read_csv(run / "history.csv"), checkpoint.read(run / "best.pt")
    state = checkpoint.read(run / "last.pt")
    return pd.DataFrame(state["history"]), {**state, "precision": state["fingerprint"]["precision"]}


def rows(name: str, history: pd.DataFrame, state: dict[str, Any], train_images: int, threads: int) -> list[dict]:
    """The CSV rows of one recipe (``state``: its checkpoint, for the architecture, device and precision)."""
    rate = train_images * len(history) / history["epoch_seconds"].sum()
    common = {"model": state["arch"], "images_per_second": round(rate, 1), "amp": state["precision"]}
    return [
        {"recipe": name, **common, **row, "threads": threads, "device": state["hardware"]}
        for row in time_curve(history).to_dict("records")
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", action="append", default=[], help="NAME=MODEL:DATA_DIR:CONFIG[,CONFIG...]")
    parser.add_argument(
        "--run", action="append", default=[], help="NAME=RUN_DIR:DATA_DIR of a DAG run, finished or cut (same threads)"
    )
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-time budget of each recipe")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of each training")
    parser.add_argument("--seed", type=int, default=1, help="training seed")
    parser.add_argument("--out", type=Path, default=Path("results/bench/time_to_accuracy"))
    args = parser.parse_args()
    if not args.recipe and not args.run:
        parser.error("give at least one --recipe or --run")
    cpu = cpu_kind()
    print(f"CPU: {cpu}; torch {torch.__version__}; {args.threads} thread(s); budget {args.minutes} min a recipe")
    table: list[dict] = []
    for spec in args.recipe:
        name, _, rest = spec.partition("=")
        model, data_dir, files = rest.split(":", 2)
        settings = recipe_settings(model, files.split(","))
        run = train(name, model, Path(data_dir), settings, args)
        images = len(load_split(Path(data_dir) / "train.npz"))
        table += rows(name, *run_record(run), images, args.threads)
    for spec in args.run:
        name, _, rest = spec.partition("=")
        path, data_dir = rest.split(":", 1)
        history, state = run_record(Path(path))
        if not (Path(path) / "history.csv").exists():  # cut short: its history, as history.csv would hold it
            partial = args.out / "partial" / name.replace(":", "/") / "history.csv"
            partial.parent.mkdir(parents=True, exist_ok=True)
            history.to_csv(partial, index=False)
        table += rows(name, history, state, len(load_split(Path(data_dir) / "train.npz")), args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "time_to_accuracy.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(table)
    frame = pd.DataFrame(table)
    curves = {name: group for name, group in frame.groupby("recipe", sort=False)}
    fig = time_figure(curves, f"Time to accuracy on {', '.join(sorted(set(frame['device'])))}")
    fig.savefig(args.out / "time_to_accuracy.png", dpi=120)
    header = ("recipe", "epochs", "minutes", "best val acc", "at minute", "best val F1", "images/s")
    print("  ".join(f"{h:>12}" for h in header))
    for name, group in curves.items():
        best = group.loc[group["val_acc"].idxmax()]
        cells = (
            name,
            len(group),
            f"{group['minutes'].iloc[-1]:.1f}",
            f"{100 * best['val_acc']:.2f} %",
            f"{best['minutes']:.1f}",
            f"{100 * group['val_macro_f1'].max():.2f} %",
            f"{group['images_per_second'].iloc[0]:.0f}",
        )
        print("  ".join(f"{c:>12}" for c in cells))
    print(f"wrote {args.out / 'time_to_accuracy.csv'} and {args.out / 'time_to_accuracy.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
