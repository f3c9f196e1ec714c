"""End to end: the whole DAG on the tiny preset, and the plan of the study on config.yaml."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pandas as pd

from conftest import bin_path, copy_workflow
from ferflow import checkpoint
from ferflow.classes import CLASS_NAMES
from ferflow.storage import load_split


def _planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    proc = subprocess.run([bin_path("snakemake"), "-n", *args], cwd=workdir, text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


def test_study_plan_on_config_yaml(tmp_path: Path) -> None:
    """config.yaml plans the study: 11 sweep jobs and 2 finals, one of each data stage, one report."""
    jobs = _planned_jobs(copy_workflow(tmp_path))
    assert jobs["train"] == 13
    for rule in ("download", "affectnet", "balance", "rgb", "report"):
        assert jobs[rule] == 1, rule
    assert jobs["evaluate"] == 13


def test_tiny_run_outputs_are_sane(tiny_run: Path) -> None:
    root = tiny_run / "results" / "tiny"
    summaries = {stage: json.loads((root / "data" / stage / "summary.json").read_text())
                 for stage in ("raw", "affectnet", "balanced", "rgb")}
    raw, balanced = summaries["raw"], summaries["balanced"]
    assert list(raw["train"]) == list(CLASS_NAMES)
    # val and test pass through every stage unchanged; train only grows
    for stage in ("affectnet", "balanced", "rgb"):
        assert summaries[stage]["val"] == raw["val"] and summaries[stage]["test"] == raw["test"]
    assert all(n >= 50 for n in balanced["train"].values())
    assert summaries["affectnet"]["train"]["disgust"] > raw["train"]["disgust"]
    rgb_train = load_split(root / "data" / "rgb" / "train.npz")
    assert rgb_train.images.shape[1:] == (48, 48, 3)
    assert (rgb_train.images[..., 0] == rgb_train.images[..., 2]).all()

    run = root / "runs" / "resnet" / "final"
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [1, 2]
    assert history["train_loss"].notna().all() and (history["val_acc"].between(0, 1)).all()
    model, ckpt = checkpoint.load_model(run / "best.pt")
    assert ckpt["arch"] == "resnet" and ckpt["classes"] == list(CLASS_NAMES)
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["accuracy"] <= 1 and set(metrics["per_class"]) == set(CLASS_NAMES)
    assert sum(map(sum, metrics["confusion"])) == sum(raw["test"].values())
    report = (root / "report" / "index.html").read_text()
    assert "data:image/" in report and "resnet" in report
    assert not re.search(r'(src|href)="(?!data:|#)', report), "report must not reference external files"


def test_tiny_rerun_is_a_no_op(tiny_run: Path) -> None:
    proc = subprocess.run([bin_path("snakemake"), "-n", "--configfile", "workflow/presets/tiny.yaml"],
                          cwd=tiny_run, text=True, capture_output=True)
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr
