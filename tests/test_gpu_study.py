"""benchmarks/gpu_study.sh, the prepared GPU script, run on the CPU with the tiny preset (--tiny)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd

from conftest import REPO, copy_workflow


def test_the_gpu_study_script_trains_and_packs_one_archive(tmp_path: Path) -> None:
    work = copy_workflow(tmp_path / "tree")
    shutil.copytree(REPO / "benchmarks", work / "benchmarks")
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path / "out")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_study.sh", "--tiny", "--minutes", "8"],
        cwd=work,
        env=env,
        text=True,
        capture_output=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    archive = tmp_path / "out" / "gpu_study.tar.gz"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        table = pd.read_csv(tar.extractfile("./time_to_accuracy/time_to_accuracy.csv"))
    assert "./machine.txt" in names and "./time_to_accuracy/time_to_accuracy.png" in names
    runs = {n for n in names if n.endswith("/history.csv")}
    assert "results/tiny-tiny/runs/resnet/final/seed1/history.csv" in runs
    assert {n.replace("history.csv", "best.pt") for n in runs} <= set(names)
    # one CSV line per epoch of every trained run, with cumulative minutes
    assert set(table["recipe"]) == {f"tiny:{n.split('/runs/')[1].removesuffix('/history.csv')}" for n in runs}
    final = table[table["recipe"] == "tiny:resnet/final/seed1"]
    assert list(final["epoch"]) == [1, 2] and final["minutes"].is_monotonic_increasing
