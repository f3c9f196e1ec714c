"""Time to accuracy: train recipes on the real model-input stage and record validation accuracy and macro-F1
against training wall time, side by side on one machine (issue 22).

A recipe is ``NAME=MODEL:DATA_DIR:CONFIG[,CONFIG...]``: the architecture, the data stage it trains on (the
folder holding train.npz and val.npz that the recipe's config builds), and the config files whose overlay
defines it (``config.yaml`` first, then presets, as ``snakemake --configfile`` overlays them); the run's
settings are the overlay's ``train`` section under ``models.<MODEL>.final``, exactly as the DAG trains the
final. Each recipe trains with ``ferflow train`` for at most ``--minutes`` of wall time (the job is stopped
there; its per-epoch history survives in ``last.pt``). A finished DAG run joins with ``--history
NAME=runs/<m>/<e>/seed<k>/history.csv``. Test splits are never read here.

Writes ``<out>/time_to_accuracy.csv`` (one row per recipe and epoch: cumulative minutes, val accuracy and
macro-F1, CPU kind, precision, threads, training images a second) and ``<out>/time_to_accuracy.png``, and prints
each recipe's best val scores and its minutes to reach them.

    python benchmarks/time_to_accuracy.py --minutes 15 --out results/bench/tta \\
        --recipe study=resnet:results/fer2013/data/rgb:config.yaml,workflow/presets/fer2013-local.yaml \\
        --history fast=results/fer2013/runs/fernetfast/final/seed1/history.csv:results/fer2013/data/balanced
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
from ferflow.device import cpu_has_native_bf16, cpu_kind
from ferflow.report.figures import time_curve, time_figure
from ferflow.storage import load_split
from ferflow.train.settings import RUNTIME_KEYS, expand_recipes, overlay

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
    "cpu",
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
    return {k: v for k, v in overlay(merged["train"], final).items() if k not in RUNTIME_KEYS}


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


def history_of(run: Path) -> pd.DataFrame:
    """The per-epoch history of a run folder: history.csv when it finished, else the one saved in last.pt."""
    if (run / "history.csv").exists():
        return pd.read_csv(run / "history.csv")
    return pd.DataFrame(checkpoint.read(run / "last.pt")["history"])


def precision(settings: dict[str, Any]) -> str:
    """What a CPU run computed in: bf16 under ``amp: true``, or ``auto`` on a CPU with native bf16; else fp32."""
    amp = settings.get("amp", "auto")
    return "bf16" if amp is True or (amp == "auto" and cpu_has_native_bf16()) else "fp32"


def rows(name: str, history: pd.DataFrame, ckpt: Path, train_images: int, threads: int, cpu: str) -> list[dict]:
    """The CSV rows of one recipe (``ckpt``: the run's last.pt or best.pt, for its architecture and settings)."""
    state = checkpoint.read(ckpt)
    rate = train_images * len(history) / history["epoch_seconds"].sum()
    common = {"model": state["arch"], "images_per_second": round(rate, 1), "amp": precision(state["settings"])}
    return [
        {"recipe": name, **common, **row, "threads": threads, "cpu": cpu}
        for row in time_curve(history).to_dict("records")
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", action="append", default=[], help="NAME=MODEL:DATA_DIR:CONFIG[,CONFIG...]")
    parser.add_argument(
        "--history", action="append", default=[], help="NAME=HISTORY_CSV:DATA_DIR of a finished DAG run (same threads)"
    )
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-time budget of each recipe")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of each training")
    parser.add_argument("--seed", type=int, default=1, help="training seed")
    parser.add_argument("--out", type=Path, default=Path("results/bench/time_to_accuracy"))
    args = parser.parse_args()
    if not args.recipe and not args.history:
        parser.error("give at least one --recipe or --history")
    cpu = cpu_kind()
    print(f"CPU: {cpu}; torch {torch.__version__}; {args.threads} thread(s); budget {args.minutes} min a recipe")
    table: list[dict] = []
    for spec in args.recipe:
        name, _, rest = spec.partition("=")
        model, data_dir, files = rest.split(":", 2)
        settings = recipe_settings(model, files.split(","))
        run = train(name, model, Path(data_dir), settings, args)
        images = len(load_split(Path(data_dir) / "train.npz"))
        table += rows(name, history_of(run), run / "last.pt", images, args.threads, cpu)
    for spec in args.history:
        name, _, rest = spec.partition("=")
        path, data_dir = rest.split(":", 1)
        images = len(load_split(Path(data_dir) / "train.npz"))
        table += rows(name, pd.read_csv(path), Path(path).parent / "best.pt", images, args.threads, cpu)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "time_to_accuracy.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(table)
    frame = pd.DataFrame(table)
    curves = {name: group for name, group in frame.groupby("recipe", sort=False)}
    fig = time_figure(curves, f"Time to accuracy on {cpu}")
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
