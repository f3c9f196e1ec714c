"""Batch-1 CPU latency of the shipped compact model beside the study's ResNet, measured in one run.

    .venv/bin/python benchmarks/latency_compact.py                       # the model shipped with ferflow
    .venv/bin/python benchmarks/latency_compact.py --checkpoint results/fer2013/runs/fernet/final/best.pt

Both models are exported to ONNX (batch norm folded, as ``ferflow export-onnx`` does) and timed by
``ferflow latency``'s own loop (:func:`ferflow.deploy.latency.measure`): PyTorch and ONNX Runtime,
``--threads`` intra-op threads, median of at least ``--repeats`` runs and ``--min-seconds``. The ResNet is
a random-init checkpoint of the study's architecture (speed does not depend on the weights). Target of
issue 13: the shipped model's ONNX Runtime batch-1 median no worse than the ResNet's (0.78 ms on the
AVX2 development machine; the ResNet row of this run is the same-machine reference).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import onnx

from ferflow import checkpoint
from ferflow.config import default
from ferflow.deploy.export import to_onnx
from ferflow.deploy.latency import capability_line, cpu_capability, cpu_name, measure
from ferflow.inference import fuse_batchnorm
from ferflow.ort import example_input

REFERENCE = "resnet"


def exported(ckpt_path: str, out: Path) -> str:
    """``ckpt_path`` exported to ONNX at ``out`` (the path, as a string)."""
    model, ckpt = checkpoint.load_model(ckpt_path)
    proto, _ = to_onnx(fuse_batchnorm(model), example_input(ckpt, 2), default("export.opset"))
    onnx.save(proto, out)
    return str(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--checkpoint", help="the compact model (default: the model shipped with ferflow)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of both engines")
    parser.add_argument("--repeats", type=int, default=200, help="least timed runs per measurement")
    parser.add_argument("--min-seconds", type=float, default=3.0, help="least timed seconds per measurement")
    args = parser.parse_args()
    compact = args.checkpoint or str(checkpoint.shipped())
    print(f"{cpu_name()}; {capability_line(cpu_capability())}; {args.threads} thread(s), batch 1")
    print(f"{'model':<12} {'parameters':>11} {'ORT ms':>8} {'ORT min':>8} {'PyTorch ms':>11}")
    medians = {}
    with tempfile.TemporaryDirectory(prefix="ferflow-latency-") as scratch:
        root = Path(scratch)
        reference = str(root / "resnet.pt")
        checkpoint.save_untrained(reference, REFERENCE, in_channels=3, num_classes=7, dropout=0.0)
        for name, path in ((REFERENCE, reference), ("compact", compact)):
            doc = measure(
                path, exported(path, root / f"{name}.onnx"), None, [1], args.repeats, 20, args.threads, args.min_seconds
            )
            ort_row, torch_row = (next(r for r in doc["rows"] if r["engine"] == e) for e in ("onnxruntime", "pytorch"))
            medians[name] = ort_row["median_ms"]
            print(
                f"{doc['arch']:<12} {doc['parameters']:>11,} {medians[name]:>8.3f} {ort_row['min_ms']:>8.3f}"
                f" {torch_row['median_ms']:>11.3f}"
            )
    ratio = medians["compact"] / medians[REFERENCE]
    print(f"compact / resnet (ONNX Runtime median): {ratio:.2f}x, target ≤ 1: {'met' if ratio <= 1 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
