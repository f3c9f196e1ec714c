"""benchmarks/gpu_study.sh, the prepared GPU script, on the CPU: with the tiny preset (--tiny, CUDA not required)
from a site Python that lacks a dependency, which the script installs offline from a wheels folder; without CUDA
it stops in one line; a failed job fails it after packing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, copy_workflow
from ferflow import checkpoint

HIDDEN = "optuna"  # a pure-Python dependency the site Python lacks: the wheels folder brings it


def tree(tmp_path: Path) -> Path:
    """The files the script needs beside each other: the workflow, src/, benchmarks/, tests/, pyproject.toml."""
    work = copy_workflow(tmp_path / "tree")
    for folder in ("benchmarks", "src", "tests"):
        shutil.copytree(REPO / folder, work / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(REPO / "pyproject.toml", work / "pyproject.toml")
    return work


def run_script(work: Path, out: Path, *args: str, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "FERFLOW_"))}
    env |= {"PYTHON": python, "OUT": str(out), "PIP_INDEX_URL": "http://127.0.0.1:9/"}  # no index reachable
    return subprocess.run(["bash", "benchmarks/gpu_study.sh", *args], cwd=work, env=env, text=True, capture_output=True)


def site_python(root: Path) -> str:
    """A Python with this environment's packages (torch included) but for ``HIDDEN`` and ferflow, as on a GPU node
    whose PyTorch module lacks some of ferflow's dependencies: a fresh venv whose .pth sees a view of this
    environment's site-packages."""
    view = root / "site-view"
    view.mkdir(parents=True)
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        name = entry.name.lower()
        if not name.startswith((HIDDEN, "ferflow", "__editable__", "_ferflow")) and not name.endswith(".pth"):
            (view / entry.name).symlink_to(entry)
    venv.create(root / "node", with_pip=True)
    python = root / "node" / "bin" / "python"
    purelib = subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    (Path(purelib.decode().strip()) / "site-view.pth").write_text(f"{view}\n")
    return str(python)


def test_the_script_installs_what_the_node_lacks_from_a_wheels_folder_trains_evaluates_and_packs(
    tmp_path: Path,
) -> None:
    wheels = tmp_path / "tree-wheels"
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(wheels), f"{HIDDEN}=={version(HIDDEN)}"],
        capture_output=True,
        text=True,
    )
    if download.returncode != 0:
        pytest.skip(f"cannot download the {HIDDEN} wheel (no network?): {download.stderr.strip()[-300:]}")
    work = tree(tmp_path)
    python = site_python(tmp_path)
    assert subprocess.run([python, "-c", f"import {HIDDEN}"], capture_output=True).returncode != 0
    proc = run_script(work, tmp_path / "out", "--tiny", "--minutes", "8", "--wheels", str(wheels), python=python)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"Successfully installed {HIDDEN}-{version(HIDDEN)}" in proc.stdout
    assert not (work / ".venv").exists()  # the node's Python, no venv
    with tarfile.open(tmp_path / "out" / "gpu_study.tar.gz") as tar:
        names = tar.getnames()
        table = pd.read_csv(tar.extractfile("./time_to_accuracy/time_to_accuracy.csv"))
    assert "./machine.txt" in names and "./time_to_accuracy/time_to_accuracy.png" in names
    runs = {n.removesuffix("/history.csv") for n in names if n.endswith("/history.csv")}
    assert "results/tiny-tiny/runs/resnet/final/seed1" in runs
    for run in runs:  # every run trained, evaluated on the test split, packed
        assert {f"{run}/best.pt", f"{run}/metrics.json", f"{run}/train.log"} <= set(names), run
    # one CSV line per epoch of every trained run, with cumulative minutes, the device and precision of the run
    assert set(table["recipe"]) == {f"tiny:{n.split('/runs/')[1]}" for n in runs}
    final = table[table["recipe"] == "tiny:resnet/final/seed1"]
    assert list(final["epoch"]) == [1, 2] and final["minutes"].is_monotonic_increasing
    best = checkpoint.read(work / "results/tiny-tiny/runs/resnet/final/seed1/best.pt")
    assert set(final["device"]) == {best["hardware"]} and set(final["amp"]) == {best["precision"]}


def test_without_usable_cuda_the_script_stops_in_one_line(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is usable here")
    work = tree(tmp_path)
    (work / "fer2013.zip").write_bytes(b"")
    proc = run_script(work, tmp_path / "out")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("gpu_study: CUDA unavailable: torch"), proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_failed_job_fails_the_script_after_packing_what_finished(tmp_path: Path) -> None:
    """Every training job fails (a crop larger than the images): the data stages finished and the jobs' logs are
    packed, and the script exits non-zero."""
    work = tree(tmp_path)
    preset = work / "workflow/presets/tiny.yaml"
    tiny = yaml.safe_load(preset.read_text())
    tiny["train"]["crop"] = 60
    tiny["models"]["resnet"].pop("search")
    preset.write_text(yaml.safe_dump(tiny))
    proc = run_script(work, tmp_path / "out", "--tiny", "--minutes", "8")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("gpu_study: failed: phase tiny (snakemake status 1")
    with tarfile.open(tmp_path / "out" / "gpu_study.tar.gz") as tar:
        names = tar.getnames()
    logs = [n for n in names if n.endswith("/train.log")]
    assert "./machine.txt" in names and logs, names
    with tarfile.open(tmp_path / "out" / "gpu_study.tar.gz") as tar:
        assert b"setting crop" in tar.extractfile(logs[0]).read()
