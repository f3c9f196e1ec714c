"""Shared fixtures: the real data in ../shared/data (skipped where absent) and one tiny pipeline run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FERFLOW_SHARED_DATA", REPO.parent / "shared" / "data"))


def _shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"real data not available: {path} is absent")
    return path


@pytest.fixture(scope="session")
def fer2013_zip() -> Path:
    """../shared/data/fer2013.zip, or skip."""
    return _shared("fer2013.zip")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init resnet checkpoint (3 channels, as trained on the rgb stage): detection and the predict
    paths do not depend on the weights."""
    import torch

    from ferflow import checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    checkpoint.save_untrained(path, "resnet", in_channels=3, num_classes=7, dropout=0.0)
    return path


@pytest.fixture(scope="session")
def affectnet_zip() -> Path:
    """../shared/data/affectnet-sample.zip, or skip."""
    return _shared("affectnet-sample.zip")


def bin_path(name: str) -> str:
    """An executable of this interpreter's environment (snakemake, ferflow)."""
    return str(Path(sys.executable).with_name(name))


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow (Snakefile, config, workflow/, envs/) into ``dest`` so it runs outside the repo."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Snakefile", dest / "Snakefile")
    shutil.copy(REPO / "config.yaml", dest / "config.yaml")
    shutil.copytree(REPO / "workflow", dest / "workflow", dirs_exist_ok=True)
    shutil.copytree(REPO / "envs", dest / "envs", dirs_exist_ok=True)
    return dest


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run snakemake in ``workdir`` with the tiny preset; output captured."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [
        bin_path("snakemake"),
        "--cores",
        "2",
        "--resources",
        "gpu=1",
        "--configfile",
        "workflow/presets/tiny.yaml",
        *args,
    ]
    proc = subprocess.run(cmd, cwd=workdir, env=env, text=True, capture_output=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    return proc


@pytest.fixture(autouse=True)
def no_weight_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test downloads model weights: torch.hub's download fails as it does offline."""
    import torch.hub

    def offline(url: str, dst: str, *args: object, **kwargs: object) -> None:
        raise urllib.error.URLError(f"tests do not download ({url})")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of the whole DAG on the tiny preset; returns its working directory."""
    workdir = copy_workflow(tmp_path_factory.mktemp("tiny"))
    snakemake(workdir)
    return workdir
