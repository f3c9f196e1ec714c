"""Incremental regeneration on a finished tiny run: a figure setting replans only figure and report jobs,
a t-SNE setting replans the t-SNE jobs and what follows them, never training or evaluation. Also checks
that Snakemake's own report builds from the report() outputs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from conftest import snakemake

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
