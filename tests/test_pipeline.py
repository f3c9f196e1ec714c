"""End to end: the whole DAG on the tiny preset, and the plan of the study on config.yaml."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd

from conftest import bin_path, copy_workflow, snakemake
from ferflow import checkpoint
from ferflow.classes import CLASS_NAMES
from ferflow.storage import load_split


def _planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    proc = subprocess.run([bin_path("snakemake"), "-n", *args], cwd=workdir, text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


def test_study_plan_on_config_yaml(tmp_path: Path) -> None:
    """config.yaml plans the study: 11 sweep experiments and 2 finals, each trained with 3 seeds, one of each
    data stage, one deployed seed per final, one report."""
    jobs = _planned_jobs(copy_workflow(tmp_path))
    assert jobs["train"] == 3 * 13
    for rule in ("download", "affectnet", "balance", "rgb", "report", "tables"):
        assert jobs[rule] == 1, rule
    assert jobs["evaluate"] == jobs["evaluate_val"] == jobs["plot_run"] == 39
    assert jobs["deploy_seed"] == 2


def test_tiny_run_outputs_are_sane(tiny_run: Path) -> None:
    root = tiny_run / "results" / "tiny"
    summaries = {
        stage: json.loads((root / "data" / stage / "summary.json").read_text())
        for stage in ("raw", "affectnet", "balanced", "rgb")
    }
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

    final = root / "runs" / "resnet" / "final"
    for seed in (1, 2):
        run = final / f"seed{seed}"
        history = pd.read_csv(run / "history.csv")
        assert list(history["epoch"]) == [1, 2]
        assert history["train_loss"].notna().all() and (history["val_acc"].between(0, 1)).all()
        model, ckpt = checkpoint.load_model(run / "best.pt")
        assert ckpt["arch"] == "resnet" and ckpt["classes"] == list(CLASS_NAMES) and ckpt["seed"] == seed
        metrics = json.loads((run / "metrics.json").read_text())
        assert 0 <= metrics["accuracy"] <= 1 and set(metrics["per_class"]) == set(CLASS_NAMES)
        assert sum(map(sum, metrics["confusion"])) == sum(raw["test"].values())
        val = json.loads((run / "val_metrics.json").read_text())
        assert sum(map(sum, val["confusion"])) == sum(raw["val"].values())
    # the deployed model: the chosen seed's best.pt, at the path that does not change with the seeds
    deployed = json.loads((final / "deployed.json").read_text())
    chosen = final / f"seed{deployed['seed']}"
    assert (final / "best.pt").read_bytes() == (chosen / "best.pt").read_bytes()
    assert set(deployed["seeds"]) == {"1", "2"} and deployed["reason"]
    healthy = {k: v for k, v in deployed["seeds"].items() if not v["collapsed"]} or deployed["seeds"]
    assert deployed["seeds"][str(deployed["seed"])]["val_macro_f1"] == max(v["val_macro_f1"] for v in healthy.values())
    assert (final / "model.onnx").exists() and (final / "latency.json").exists()
    # the tables: mean ± std over the two seeds, one row per run in the seed table
    finals = pd.read_csv(root / "tables" / "finals.csv")
    assert list(finals["seeds"]) == [2] and finals.loc[0, "test_acc_std"] >= 0
    assert " ± " in (root / "tables" / "finals.md").read_text()
    assert len(pd.read_csv(root / "tables" / "seeds.csv")) == 6  # the sweep experiment, the search's, the final
    report = (root / "report" / "index.html").read_text()
    assert "data:image/" in report and "resnet" in report
    assert not re.search(r'(src|href)="(?!data:|#)', report), "report must not reference external files"


def test_tiny_rerun_is_a_no_op(tiny_run: Path) -> None:
    proc = subprocess.run(
        [bin_path("snakemake"), "-n", "--configfile", "workflow/presets/tiny.yaml"],
        cwd=tiny_run,
        text=True,
        capture_output=True,
    )
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_forcerun_retrains_a_finished_training_job(tiny_run: Path, tmp_path: Path) -> None:
    """`--forcerun train` over a finished run trains it again from scratch (never resumes a finished last.pt)."""
    workdir = tmp_path / "copy"
    shutil.copytree(tiny_run, workdir, symlinks=True)  # keeps mtimes and .snakemake metadata
    run = workdir / "results" / "tiny" / "runs" / "resnet" / "final" / "seed1"
    before = pd.read_csv(run / "history.csv")
    snakemake(workdir, "--forcerun", "train", "--", str(run.relative_to(workdir) / "history.csv"))
    after = pd.read_csv(run / "history.csv")
    log = (run / "train.log").read_text()
    assert "holds a finished run (epoch 2); training from scratch" in log and "resuming" not in log
    assert "epoch 1/2  train loss" in log and "epoch 2/2  train loss" in log  # both epochs trained again
    assert list(after["epoch"]) == [1, 2] and not (after["epoch_seconds"] == before["epoch_seconds"]).any()
