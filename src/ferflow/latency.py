"""CPU inference throughput of a final model in PyTorch and in ONNX Runtime.

For every batch size and engine: ``--warmup`` untimed runs, then ``--repeats`` timed runs of one
forward pass on a fixed seeded input; the row reports the median (``median_ms`` = ``ms_per_batch``),
``images_per_s`` = batch size / median, and the spread (``min_ms``, ``max_ms``) that shows contention
from other processes. PyTorch runs the model in eval mode, channels_last, under ``inference_mode``
with ``torch.set_num_threads(threads)``; ONNX Runtime uses the CPU provider with
``intra_op_num_threads=threads`` and all graph optimisations. The issue's target (batch-1 latency
≤ 0.5 ms for ``resnet`` on 2 cores) is printed next to the measured figures and stored in the JSON.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Any, Callable

import numpy as np
import onnxruntime as ort
import torch

from ferflow import checkpoint, models
from ferflow.errors import FerflowError
from ferflow.export import INPUT, OUTPUT, example_input, ort_session
from ferflow.storage import write_json

TARGET = {"arch": "resnet", "batch_size": 1, "threads": 2, "max_ms": 0.5}


def time_runs(fn: Callable[[], object], warmup: int, repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def row(engine: str, batch_size: int, times: list[float]) -> dict[str, Any]:
    """One latency.json row from the timed runs."""
    median = statistics.median(times)
    return {
        "engine": engine,
        "batch_size": batch_size,
        "images_per_s": round(batch_size / median, 2),
        "ms_per_batch": round(median * 1e3, 4),
        "median_ms": round(median * 1e3, 4),
        "ms_per_image": round(median * 1e3 / batch_size, 5),
        "min_ms": round(min(times) * 1e3, 4),
        "max_ms": round(max(times) * 1e3, 4),
        "repeats": len(times),
    }


def cpu_name() -> str:
    """The CPU model name (Linux), else what platform reports."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(ckpt_path: str, onnx_path: str, batch_sizes: list[int], repeats: int, warmup: int, threads: int) -> dict[str, Any]:
    """The latency.json document."""
    model, ckpt = checkpoint.load_model(ckpt_path)
    model = model.to(memory_format=torch.channels_last)
    session = ort_session(onnx_path, threads)
    shape = session.get_inputs()[0].shape
    expected = list(example_input(ckpt, 1).shape[1:])
    if [session.get_inputs()[0].name, *shape[1:]] != [INPUT, *expected]:
        raise FerflowError(f"{onnx_path}: ONNX input {session.get_inputs()[0].name} {shape} does not fit the checkpoint's {expected}")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    rows = []
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    try:
        for batch_size in batch_sizes:
            x = example_input(ckpt, batch_size)
            x_cl = x.contiguous(memory_format=torch.channels_last)
            feed = {INPUT: np.ascontiguousarray(x.numpy())}
            with torch.inference_mode():
                rows.append(row("pytorch", batch_size, time_runs(lambda: model(x_cl), warmup, repeats)))
            rows.append(row("onnxruntime", batch_size, time_runs(lambda: session.run([OUTPUT], feed), warmup, repeats)))
    finally:
        torch.set_num_threads(previous_threads)
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "threads": threads,
        "rows": rows,
        "arch": ckpt["arch"],
        "parameters": models.count_parameters(model),
        "checkpoint": str(ckpt_path),
        "onnx": str(onnx_path),
        "repeats": repeats,
        "warmup": warmup,
        "statistic": "median of repeats, after warm-up",
        "cpu": cpu_name(),
        "logical_cpus": os.cpu_count(),
        "load_average_1min": {"before": load_before, "after": load_after},
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "target": TARGET,
    }


def summary(doc: dict[str, Any]) -> list[str]:
    """The printed table, with the issue's target next to the batch-1 figures."""
    lines = [f"{doc['arch']} ({doc['parameters']:,} parameters), {doc['threads']} thread(s), median of {doc['repeats']} runs, "
             f"{doc['cpu']}, load average {doc['load_average_1min']['before']} → {doc['load_average_1min']['after']}",
             f"  {'engine':<12} {'batch':>6} {'images/s':>10} {'ms/batch':>10} {'ms/image':>9} {'min ms':>9} {'max ms':>9}"]
    for r in doc["rows"]:
        note = ""
        if r["batch_size"] == TARGET["batch_size"] and doc["arch"] == TARGET["arch"]:
            met = "met" if r["median_ms"] <= TARGET["max_ms"] else "NOT met"
            note = f"   target ≤ {TARGET['max_ms']} ms on {TARGET['threads']} threads: {met}"
        lines.append(f"  {r['engine']:<12} {r['batch_size']:>6} {r['images_per_s']:>10.1f} {r['ms_per_batch']:>10.3f} "
                     f"{r['ms_per_image']:>9.4f} {r['min_ms']:>9.3f} {r['max_ms']:>9.3f}{note}")
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a ferflow checkpoint (best.pt)")
    parser.add_argument("--onnx", required=True, help="the model exported by 'ferflow export-onnx'")
    parser.add_argument("--out", required=True, help="latency.json to write")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 256], metavar="B", help="default: 1 256")
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per measurement (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs before timing (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of both engines (default 2)")


def run(args: argparse.Namespace) -> int:
    for name in ("repeats", "threads"):
        if getattr(args, name) < 1:
            raise FerflowError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0 or min(args.batch_sizes) < 1:
        raise FerflowError("--warmup must be >= 0 and every --batch-sizes value >= 1")
    doc = measure(args.checkpoint, args.onnx, args.batch_sizes, args.repeats, args.warmup, args.threads)
    print("\n".join(summary(doc)))
    write_json(args.out, doc)
    return 0
