"""Incremental regeneration on a finished tiny run: a figure setting replans only figure and report jobs,
a t-SNE setting replans the t-SNE jobs and what follows them, never training or evaluation. Also checks
that Snakemake's own report builds from the report() outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from conftest import REPO, copy_workflow, snakemake
from ferflow.train.settings import RUNTIME_KEYS

FINAL_SEED1 = "results/fer2013/runs/resnet/final/seed1/best.pt"
FIGURE_RULES = {"plot_samples", "plot_distribution", "plot_tsne_raw", "plot_run", "plot_sweep", "plot_params"}


def planned_rules(workdir: Path, *args: str) -> dict[str, int]:
    """``{rule: jobs}`` that ``snakemake -n`` plans (the dry run's job table), 'all' left out."""
    proc = snakemake(workdir, "-n", *args)
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:", 1)[1].split("total", 1)[0]
    jobs = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.MULTILINE)}
    jobs.pop("all", None)
    return jobs


def tiny_with(workdir: Path, name: str, change: dict[str, dict[str, Any]]) -> str:
    """A config file: the tiny preset with ``change`` merged into its sections (replaces the preset's
    --configfile, since a repeated --configfile option overrides the previous one)."""
    config = yaml.safe_load((workdir / "workflow" / "presets" / "tiny.yaml").read_text())
    for section, values in change.items():
        config[section] = {**config.get(section, {}), **values}
    (workdir / name).write_text(yaml.safe_dump(config))
    return name


def test_finished_run_is_up_to_date(tiny_run: Path) -> None:
    assert planned_rules(tiny_run) == {}


def test_figure_setting_replans_only_figures_and_report(tiny_run: Path) -> None:
    jobs = planned_rules(tiny_run, "--configfile", tiny_with(tiny_run, "dpi.yaml", {"figures": {"dpi": 61}}))
    assert set(jobs) == FIGURE_RULES | {"report"}, jobs
    runs = len(list((tiny_run / "results" / "tiny" / "runs").glob("*/*/seed*/metrics.json")))
    assert runs == 4  # two experiments, two seeds
    assert jobs["plot_run"] == runs and jobs["report"] == 1


def test_tsne_setting_replans_tsne_and_what_follows_not_training(tiny_run: Path) -> None:
    jobs = planned_rules(tiny_run, "--configfile", tiny_with(tiny_run, "tsne.yaml", {"tsne": {"perplexity": 7}}))
    assert set(jobs) == {"tsne_raw", "plot_tsne_raw", "embed", "plot_run", "report"}, jobs
    assert not {"train", "evaluate", "tables", "plot_sweep", "plot_params"} & set(jobs)


def test_runtime_settings_replan_nothing_but_a_training_setting_retrains(tiny_run: Path) -> None:
    """`train.threads` and `train.device` say how a run computes, not what it computes: no job reruns."""
    runtime = tiny_with(tiny_run, "runtime.yaml", {"train": {"threads": 1, "device": "cpu"}})
    assert planned_rules(tiny_run, "--configfile", runtime) == {}
    jobs = planned_rules(tiny_run, "--configfile", tiny_with(tiny_run, "batch.yaml", {"train": {"batch_size": 32}}))
    assert jobs["train"] == 4 and jobs["report"] == 1


def test_snakemake_report(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "snakemake-report.html"
    snakemake(tiny_run, "--report", str(out))
    text = out.read_text(errors="replace")
    assert out.stat().st_size > 10_000
    for word in ("Runs", "Study", "Tables", "Data"):
        assert word in text, word


def planned_settings(workdir: Path, *args: str) -> list[dict[str, Any]]:
    """The ``--settings`` JSON of every training job a ``snakemake -n -p`` plans."""
    proc = snakemake(workdir, "-n", "-p", *args)
    return [json.loads(m) for m in re.findall(r"ferflow train [^\n]*?--settings '([^']*)'", proc.stdout + proc.stderr)]


def test_train_params_hold_only_the_settings_the_user_wrote(tmp_path: Path) -> None:
    """The params that decide a retrain are the written `train` keys overlaid by the experiment's: the
    defaults the schema fills in stay out, so a default added by a later version replans no finished run
    (the schema filling every default once retrained every run on upgrade)."""
    workdir = copy_workflow(tmp_path)
    study = yaml.safe_load((REPO / "config.yaml").read_text())
    tiny = yaml.safe_load((workdir / "workflow" / "presets" / "tiny.yaml").read_text())
    written = (set(study["train"]) | set(tiny["train"])) - set(RUNTIME_KEYS)
    resnet = study["models"]["resnet"]
    experiments = set(resnet["sweep"]["adam_lr3_dropout0"]) | set(resnet["final"])
    planned = planned_settings(workdir)
    assert len(planned) == 4  # one sweep experiment and the final, two seeds
    for settings in planned:
        assert written <= set(settings) <= written | experiments, settings


def test_study_params_are_those_of_earlier_versions(tmp_path: Path) -> None:
    """config.yaml's ResNet final plans the params string that versions before the schema defaults wrote
    (commit aa563a5): results finished by them are up to date after an upgrade."""
    workdir = copy_workflow(tmp_path)
    planned = planned_settings(workdir, "--configfile", "config.yaml", "--", FINAL_SEED1)
    assert len(planned) == 1
    assert json.dumps(planned[0], sort_keys=True) == (
        '{"amp": "auto", "augmentation": {"horizontal_flip": true, "rotation": 5, "shear": 10, "translate": 0.2,'
        ' "zoom": 0}, "batch_size": 64, "channels_last": true, "dropout": 0.0, "early_stopping_patience": null,'
        ' "epochs": 40, "lr": 0.001, "momentum": 0.9, "optimizer": "adam", "plateau": null, "weight_decay": 0.0}'
    )
