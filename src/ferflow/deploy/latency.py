"""CPU inference throughput of a final model in PyTorch and in ONNX Runtime (fp32 and, given
``--int8-onnx``, the int8 model of ``ferflow quantize``).

For every batch size (``latency_batch_sizes``) and engine: ``--warmup`` untimed runs, then timed runs of one
forward pass on a fixed seeded input (at least ``latency_repeats`` of them, and more until ``latency_min_seconds``
have passed, so that the fast batch-1 figures rest on thousands of runs); the row reports the median (``median_ms`` =
``ms_per_batch``), ``images_per_s`` = batch size / median, and the spread (``min_ms``, ``max_ms``) that shows contention
from other processes. PyTorch runs the model with batch norm folded into the convolutions (as
exported), in eval mode, channels_last, under ``inference_mode`` with ``torch.set_num_threads(threads)``;
ONNX Runtime uses the CPU provider with ``intra_op_num_threads=threads``, sequential execution and all
graph optimisations. The deployment target (batch-1 median ≤ 0.5 ms on 2 threads) is printed next to
every batch-1 figure and stored in the JSON, with what the CPU offers for it (:func:`cpu_capability`:
PyTorch's kernel level, and AVX2, AVX-512, VNNI and AMX from the CPU flags). With ``--int8-check``
(the comparison JSON of ``ferflow quantize``) the accuracy side of the int8 trade is copied into
``int8_comparison``, so that one file holds the deployment table the report shows. ``--settings`` holds
the config's ``export`` keys named here (``latency_batch_sizes``, ``latency_repeats``, ``latency_min_seconds``,
``threads``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from ferflow import checkpoint, models
from ferflow.config import add_settings_argument
from ferflow.errors import FerflowError
from ferflow.inference import fuse_batchnorm
from ferflow.ort import INPUT, OUTPUT, example_input, input_shape, ort_session, read_metadata
from ferflow.storage import check_outputs, read_json, write_json

TARGET = {"batch_size": 1, "threads": 2, "max_ms": 0.5}
CPU_FLAGS = {
    "avx2": ("avx2",),
    "avx512": ("avx512f",),
    "avx512_vnni": ("avx512_vnni",),
    "avx_vnni": ("avx_vnni",),
    "amx": ("amx_tile", "amx_int8", "amx_bf16"),
}


def time_runs(fn: Callable[[], object], warmup: int, repeats: int, min_seconds: float = 0.0) -> list[float]:
    """Seconds of each timed call of ``fn`` after ``warmup`` untimed calls: at least ``repeats`` calls,
    and more until they add up to ``min_seconds``."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    while len(times) < repeats or sum(times) < min_seconds:
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


def cpu_capability() -> dict[str, Any]:
    """PyTorch's CPU kernel level and which int8/vector extensions the CPU flags (Linux) show."""
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((set(line.split(":", 1)[1].split()) for line in fh if line.startswith("flags")), set())
    except OSError:
        pass
    return {
        "torch": torch.backends.cpu.get_cpu_capability(),
        **{name: any(f in flags for f in names) for name, names in CPU_FLAGS.items()},
    }


def capability_line(capability: dict[str, Any]) -> str:
    """``CPU capability AVX512 (AVX2 yes, AVX-512 yes, ...)`` as printed."""
    names = {"avx2": "AVX2", "avx512": "AVX-512", "avx512_vnni": "AVX-512 VNNI", "avx_vnni": "AVX-VNNI", "amx": "AMX"}
    shown = ", ".join(f"{names[name]} {'yes' if capability[name] else 'no'}" for name in CPU_FLAGS)
    return f"CPU capability {capability['torch']} ({shown})"


def checked_session(path: str, threads: int, ckpt: dict[str, Any]) -> ort.InferenceSession:
    """An ONNX Runtime session of ``path``, an export of the checkpoint's architecture whose input fits it."""
    session = ort_session(path, threads)
    shape, expected = input_shape(session, path), tuple(example_input(ckpt, 1).shape[1:])
    if shape != expected:
        raise FerflowError(f"{path}: ONNX input (batch, {', '.join(map(str, shape))}) does not fit the checkpoint")
    arch = read_metadata(session, path)["arch"]
    if arch != ckpt["arch"]:
        raise FerflowError(f"{path}: an export of {arch!r}, not of the checkpoint's {ckpt['arch']!r}")
    return session


def measure(
    ckpt_path: str,
    onnx_path: str,
    int8_path: str | None,
    batch_sizes: list[int],
    repeats: int,
    warmup: int,
    threads: int,
    min_seconds: float,
) -> dict[str, Any]:
    """The latency.json document."""
    model, ckpt = checkpoint.load_model(ckpt_path)
    parameters = models.count_parameters(model)
    model = fuse_batchnorm(model).to(memory_format=torch.channels_last)
    sessions = {"onnxruntime": checked_session(onnx_path, threads, ckpt)}
    if int8_path is not None:
        sessions["onnxruntime-int8"] = checked_session(int8_path, threads, ckpt)
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
                times = time_runs(lambda x=x_cl: model(x), warmup, repeats, min_seconds)
            rows.append(row("pytorch", batch_size, times))
            for engine, session in sessions.items():
                times = time_runs(lambda s=session, f=feed: s.run([OUTPUT], f), warmup, repeats, min_seconds)
                rows.append(row(engine, batch_size, times))
    finally:
        torch.set_num_threads(previous_threads)
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "threads": threads,
        "rows": rows,
        "arch": ckpt["arch"],
        "parameters": parameters,
        "checkpoint": str(ckpt_path),
        "onnx": str(onnx_path),
        "int8_onnx": None if int8_path is None else str(int8_path),
        "repeats": repeats,
        "min_seconds": min_seconds,
        "warmup": warmup,
        "statistic": "median of the timed runs (at least repeats, at least min_seconds), after warm-up",
        "cpu": cpu_name(),
        "cpu_capability": cpu_capability(),
        "logical_cpus": os.cpu_count(),
        "load_average_1min": {"before": load_before, "after": load_after},
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "target": TARGET,
    }


def summary(doc: dict[str, Any]) -> list[str]:
    """The printed table, with the deployment target next to the batch-1 figures."""
    lines = [
        f"{doc['arch']} ({doc['parameters']:,} parameters), {doc['threads']} thread(s), "
        f"median of ≥ {doc['repeats']} runs (≥ {doc['min_seconds']} s), {doc['cpu']}, "
        f"load average {doc['load_average_1min']['before']} → {doc['load_average_1min']['after']}",
        capability_line(doc["cpu_capability"]),
        f"  {'engine':<16} {'batch':>6} {'images/s':>10} {'ms/batch':>10} {'ms/image':>9} {'min ms':>9} {'max ms':>9}",
    ]
    for r in doc["rows"]:
        note = ""
        if r["batch_size"] == TARGET["batch_size"]:
            met = "met" if r["median_ms"] <= TARGET["max_ms"] else "NOT met"
            note = f"   target ≤ {TARGET['max_ms']} ms on {TARGET['threads']} threads: {met}"
        lines.append(
            f"  {r['engine']:<16} {r['batch_size']:>6} {r['images_per_s']:>10.1f} {r['ms_per_batch']:>10.3f} "
            f"{r['ms_per_image']:>9.4f} {r['min_ms']:>9.3f} {r['max_ms']:>9.3f}{note}"
        )
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a ferflow checkpoint (best.pt)")
    parser.add_argument("--onnx", required=True, help="the model exported by 'ferflow export-onnx'")
    parser.add_argument("--int8-onnx", help="also time the int8 model written by 'ferflow quantize'")
    parser.add_argument("--int8-check", help="the int8_check.json of 'ferflow quantize', copied into the output")
    parser.add_argument("--out", required=True, help="latency.json to write")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs before timing")
    add_settings_argument(parser, "latency")


def run(args: argparse.Namespace) -> int:
    settings = args.settings  # batch sizes, repeats, min seconds, threads: checked against the schema
    check_outputs([args.out], [args.checkpoint, args.onnx, args.int8_onnx, args.int8_check])
    if args.warmup < 0:
        raise FerflowError(f"--warmup must be >= 0, got {args.warmup}")
    comparison = None
    if args.int8_check:
        check, keys = read_json(args.int8_check), ("fp32", "int8", "accuracy_drop_points", "agreement", "bytes")
        if not isinstance(check, dict) or not all(k in check for k in keys):
            raise FerflowError(
                f"{args.int8_check}: not a comparison written by 'ferflow quantize' (needs {', '.join(keys)})"
            )
        comparison = {k: check[k] for k in keys}
    doc = measure(
        args.checkpoint,
        args.onnx,
        args.int8_onnx,
        settings["latency_batch_sizes"],
        settings["latency_repeats"],
        args.warmup,
        settings["threads"],
        settings["latency_min_seconds"],
    )
    if comparison is not None:
        doc["int8_comparison"] = comparison
    print("\n".join(summary(doc)))
    write_json(args.out, doc)
    return 0
