"""Throughput levers of the training engine, side by side in one run (issue 22): training images a second of
``Engine.step`` on the real model-input stage for each variant (whole 48-px faces against 40-px crops, batch
128 against 256, torch.compile off and on with its compile time, channels_last off and on), and one 2-thread
job against two 1-thread jobs running at the same time.

    python benchmarks/throughput_levers.py --data-dir results/fer2013/data/balanced --model fernetfast

Each variant times ``--steps`` steps after ``--warmup`` untimed ones (compile time is the first step's extra
seconds); fp32 unless ``--amp auto``. The recipe's other settings come from workflow/presets/fast.yaml.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

from ferflow import models
from ferflow.device import cpu_kind
from ferflow.storage import load_split
from ferflow.train.engine import DeviceData, EpochBatches, epoch_generator, make_engine
from ferflow.train.settings import resolve_settings

FAST = Path(__file__).resolve().parents[1] / "workflow/presets/fast.yaml"  # the recipe the variants change
VARIANTS = {  # name: settings over the fast recipe's (crop 40, batch 128, channels_last)
    "48 px whole faces": {"crop": None},
    "40 px crops": {},
    "40 px crops, batch 256": {"batch_size": 256},
    "40 px crops, channels_last off": {"channels_last": False},
    "40 px crops, torch.compile": {"compile": True},
}


def measure(args: argparse.Namespace, variant: dict) -> dict[str, float]:
    """Images a second of the engine's steps under ``variant`` (and the first step's extra seconds)."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    recipe = yaml.safe_load(FAST.read_text())["recipes"]["fast"]
    settings = resolve_settings({**recipe, "amp": args.amp, **variant})
    split = load_split(args.data_dir / "train.npz")
    channels = 1 if split.images.ndim == 3 else split.images.shape[-1]
    data = DeviceData.of(split, torch.device("cpu"), channels)
    model = models.build(args.model, in_channels=channels, input_crop=settings["crop"])
    engine, _ = make_engine(model, settings, torch.device("cpu"), 100)
    batches = iter(EpochBatches(data, settings, epoch_generator(0, 1), engine.channels_last))
    times = []
    for _ in range(args.warmup + args.steps):
        x, targets, *_ = next(batches)
        began = time.perf_counter()
        engine.step(x, targets)
        times.append(time.perf_counter() - began)
    step = sum(times[args.warmup :]) / args.steps
    return {"images_per_second": settings["batch_size"] / step, "first_step_extra_s": times[0] - step}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="model-input stage (train.npz)")
    parser.add_argument("--model", default="fernetfast")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--amp", default=False, type=lambda v: {"auto": "auto", "true": True}.get(v, False))
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # one measurement, as a child process (JSON out)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(measure(args, VARIANTS[args.variant])))
        return 0
    print(f"{args.model} on {args.data_dir}, {cpu_kind()}, torch {torch.__version__}, amp {args.amp}")
    print(f"{'variant':<34} {'images/s':>9} {'first-step extra (compile) s':>30}")

    def child(variant: str, threads: int) -> subprocess.Popen:
        command = [sys.executable, __file__, "--variant", variant, "--threads", str(threads)]
        command += ["--data-dir", str(args.data_dir), "--model", args.model, "--steps", str(args.steps)]
        command += ["--warmup", str(args.warmup), "--amp", str(args.amp).lower()]
        return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)

    for name in VARIANTS:
        result = json.loads(child(name, args.threads).communicate()[0])
        print(f"{name:<34} {result['images_per_second']:>9.0f} {result['first_step_extra_s']:>30.1f}")
    pair = [child("40 px crops", 1) for _ in range(2)]
    rates = [json.loads(p.communicate()[0])["images_per_second"] for p in pair]
    print(f"{'two 1-thread jobs side by side':<34} {sum(rates):>9.0f}   (each {rates[0]:.0f} and {rates[1]:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
