"""Seconds of the data stages after acquisition (AffectNet injection, balancing, RGB) on real data.

    .venv/bin/ferflow download --source ../shared/data/fer2013.zip --out /tmp/ferflow-bench/raw
    .venv/bin/python benchmarks/data_stages.py --raw /tmp/ferflow-bench/raw

Each stage runs as its own ``ferflow`` process, as Snakemake runs it, so interpreter start-up and
imports are included. The AffectNet archive is extracted (and hashed) into the cache once before the
clock starts, as a Snakemake run does on its first injection only; that one-off cost is printed apart.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 60.0


def cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one command; its output is shown only when it fails."""
    cpu, start = cpu_children(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return wall, cpu_children() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", required=True, type=Path, help="raw stage directory (ferflow download --out)")
    parser.add_argument("--affectnet", default="../shared/data/affectnet-sample.zip", help="AffectNet source")
    parser.add_argument("--cache-dir", default="resources/downloads")
    parser.add_argument("--work", type=Path, default=None, help="where the stages are written (default: a temp dir)")
    parser.add_argument("--min-per-class", type=int, default=4500)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    ferflow = str(Path(sys.executable).with_name("ferflow"))

    from ferflow.fetch import resolve_source

    start = time.perf_counter()
    resolve_source(args.affectnet, None, Path(args.cache_dir))
    print(f"one-off extraction of {args.affectnet}: {time.perf_counter() - start:.1f} s (cached afterwards)")

    with tempfile.TemporaryDirectory(prefix="ferflow-bench-") as tmp:
        work = args.work or Path(tmp)
        stages = {
            "injection": [
                ferflow,
                "affectnet",
                "--in-dir",
                str(args.raw),
                "--out",
                str(work / "affectnet"),
                "--source",
                args.affectnet,
                "--cache-dir",
                args.cache_dir,
                "--workers",
                str(args.workers),
            ],
            "balancing": [
                ferflow,
                "balance",
                "--in-dir",
                str(work / "affectnet"),
                "--out",
                str(work / "balanced"),
                "--settings",
                json.dumps({"min_per_class": args.min_per_class}),
                "--threads",
                str(args.workers),
            ],
            "RGB": [ferflow, "rgb", "--in-dir", str(work / "balanced"), "--out", str(work / "rgb")],
        }
        total_wall = total_cpu = 0.0
        print(f"{'stage':<10} {'wall s':>7} {'CPU s':>7}")
        for name, cmd in stages.items():
            wall, cpu = timed(cmd)
            total_wall, total_cpu = total_wall + wall, total_cpu + cpu
            print(f"{name:<10} {wall:7.1f} {cpu:7.1f}")
        print(
            f"{'total':<10} {total_wall:7.1f} {total_cpu:7.1f}   (target: < {TARGET_S:.0f} s wall on 2 cores: "
            f"{'met' if total_wall < TARGET_S else 'NOT met'})"
        )
        summary = (work / "rgb" / "summary.json").read_text()
        print("balanced training split:", " ".join(summary.split()))
    return 0 if total_wall < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
