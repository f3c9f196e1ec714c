"""The lean install: the wheel, installed without extras into a fresh venv, predicts a photo with the shipped model,
and a command that needs an extra says which one.

PyTorch and torchvision (3 GB with their CUDA libraries) are not unpacked again: the fresh venv sees the copies of
this environment through a ``.pth`` file that names a folder of links to them and to their own requirements only.
Everything else the wheel declares is installed by pip, so a package missing from its base dependencies fails here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from conftest import REPO
from ferflow import checkpoint
from ferflow.predict.scenes import face_photo

SHARED_FROM_HERE = ("torch", "torchvision")


def requirement_closure(names: tuple[str, ...]) -> list[metadata.Distribution]:
    """The installed distributions ``names`` need, with what they need in turn (extras left out)."""
    found: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in found:
            continue
        dist = metadata.distribution(name)
        found[name] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(found.values())


def link_torch(venv: Path, links: Path) -> None:
    """Make this environment's torch and torchvision (and their requirements) importable in ``venv``."""
    links.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for dist in requirement_closure(SHARED_FROM_HERE):
        for top in {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")}:
            if (site / top).exists() and not (links / top).exists():
                (links / top).symlink_to(site / top)
    purelib = subprocess.run(
        [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "shared-torch.pth").write_text(f"{links}\n")


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the ferflow wheel installed without extras; returns its bin folder."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "src" / "ferflow", source / "src" / "ferflow", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", root / "dist", source], check=True)
    (wheel,) = (root / "dist").glob("ferflow-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    link_torch(venv, root / "torch-links")
    subprocess.run([venv / "bin" / "python", *pip[1:], "install", wheel], check=True)
    return venv / "bin"


@pytest.mark.skipif(not checkpoint.SHIPPED.is_file(), reason="no model shipped in ferflow/assets/")
def test_the_wheel_without_extras_predicts_a_photo(bare_venv: Path, tmp_path: Path) -> None:
    installed = subprocess.run([bare_venv / "python", "-m", "pip", "list", "--format=json"], capture_output=True)
    names = {p["name"].lower() for p in json.loads(installed.stdout)}
    assert "ferflow" in names and not names & {"snakemake", "scikit-learn", "matplotlib", "kaggle", "onnx"}
    photo = tmp_path / "photo.jpg"
    (box,) = face_photo(photo, (160,))
    proc = subprocess.run([bare_venv / "ferflow", "predict", photo, "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (face,) = json.loads(proc.stdout)["images"][0]["faces"]
    assert len(face["probabilities"]) == 7 and abs(face["box"][0] - box[0]) < 30
    assert Path(json.loads(proc.stdout)["checkpoint"]).name == checkpoint.SHIPPED.name


def test_a_command_of_the_pipeline_names_its_extra(bare_venv: Path, tmp_path: Path) -> None:
    proc = subprocess.run([bare_venv / "ferflow", "plot-run", "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1
    message = "needs matplotlib, which the 'pipeline' extra installs: pip install 'ferflow[pipeline]'"
    assert proc.stderr.strip().splitlines() == [f"ferflow plot-run: error: {message}"]


def test_torch_is_a_range_that_takes_a_site_pytorch_and_ci_pins_it_in_a_constraints_file() -> None:
    """ferflow installs next to a GPU node's own PyTorch (e.g. torch 2.11 built for CUDA 13.0, torchvision 0.26):
    the package declares ranges; the exact versions of CI and `make install` live in constraints/ci.txt."""
    import tomllib

    declared = {
        (req := Requirement(text)).name: req
        for text in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    lines = (REPO / "constraints" / "ci.txt").read_text().splitlines()
    pinned = {(req := Requirement(line)).name: req for line in lines if line and not line.startswith("#")}
    assert set(pinned) == set(SHARED_FROM_HERE)
    for name, site in (("torch", "2.11.0+cu130"), ("torchvision", "0.26.0+cu130")):
        assert declared[name].specifier.contains(site), declared[name]
        (pin,) = pinned[name].specifier
        assert pin.operator == "==" and declared[name].specifier.contains(pin.version)
        assert metadata.version(name).split("+")[0] == pin.version  # this environment is CI's
    assert "-c constraints/ci.txt" in (REPO / "Makefile").read_text()
