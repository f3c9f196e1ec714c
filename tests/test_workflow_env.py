"""How the workflow runs: `.venv/bin/snakemake` without an activated venv finds `ferflow`; planning stays light."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import bin_path, copy_workflow


def test_rules_find_ferflow_without_an_activated_venv(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path)
    venv_bin = Path(sys.executable).parent
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p) != venv_bin)
    assert shutil.which("ferflow", path=path) is None, "this test needs a PATH without ferflow"
    proc = subprocess.run(
        [bin_path("snakemake"), "download", "--cores", "1", "--configfile", "workflow/presets/tiny.yaml"],
        cwd=workdir,
        env={**os.environ, "PATH": path},
        text=True,
        capture_output=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (summary,) = workdir.glob("results/*/data/raw/summary.json")
    assert sum(json.loads(summary.read_text())["test"].values()) == 70  # the tiny preset's synthetic test split


def test_planning_imports_neither_torch_nor_torchvision(tmp_path: Path) -> None:
    """Every `snakemake` call parses the Snakefile: checking the config must not pay for torch's import."""
    workdir = copy_workflow(tmp_path)
    args = [sys.executable, "-X", "importtime", "-m", "snakemake", "-n", "--configfile", "workflow/presets/tiny.yaml"]
    proc = subprocess.run(args, cwd=workdir, text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "ferflow.models" in imported and "snakemake.workflow" in imported
    assert not imported & {"torch", "torchvision"}
