"""Incremental regeneration on a finished tiny run: a figure setting replans only figure and report jobs,
a t-SNE setting replans the t-SNE jobs and what follows them, never training or evaluation. Also checks
that Snakemake's own report builds from the report() outputs."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import copy_workflow, snakemake
from ferflow import config
from ferflow.config import default
from ferflow.train import settings as settings_module
from ferflow.train.settings import DEFAULTS, OPTIONS, RUNTIME_KEYS, defining_settings, resolve_settings

FIGURE_RULES = {
    "plot_samples",
    "plot_distribution",
    "plot_tsne_raw",
    "plot_run",
    "plot_sweep",
    "plot_params",
    "plot_search",
    "plot_time",
}


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
    assert runs == 6  # three experiments (the sweep's, the search's, the final), two seeds
    assert jobs["plot_run"] == runs and jobs["report"] == 1


def test_tsne_setting_replans_tsne_and_what_follows_not_training(tiny_run: Path) -> None:
    jobs = planned_rules(tiny_run, "--configfile", tiny_with(tiny_run, "tsne.yaml", {"tsne": {"perplexity": 7}}))
    assert set(jobs) == {"tsne_raw", "plot_tsne_raw", "embed", "plot_run", "report"}, jobs
    assert not {"train", "evaluate", "tables", "plot_sweep", "plot_params"} & set(jobs)


def test_runtime_settings_replan_nothing_but_a_training_setting_retrains(tiny_run: Path) -> None:
    """`train.threads`, `device`, `compile` and `channels_last` say how a run computes, not what it learns: no job
    reruns."""
    runtime = {"threads": 1, "device": "cpu", "compile": True, "channels_last": False}
    runtime = tiny_with(tiny_run, "runtime.yaml", {"train": runtime})
    assert planned_rules(tiny_run, "--configfile", runtime) == {}
    jobs = planned_rules(tiny_run, "--configfile", tiny_with(tiny_run, "batch.yaml", {"train": {"batch_size": 32}}))
    assert jobs["train"] == 6 and jobs["report"] == 1


def test_snakemake_report(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "snakemake-report.html"
    snakemake(tiny_run, "--report", str(out))
    text = out.read_text(errors="replace")
    assert out.stat().st_size > 10_000
    for word in ("Runs", "Study", "Tables", "Data"):
        assert word in text, word


def planned_settings(workdir: Path, *args: str) -> list[dict[str, Any]]:
    """The ``--settings`` JSON of every training job a ``snakemake -n -p`` plans (not those of the experiment
    `search`, whose settings the search's checkpoint learns at run time: `<TBD>` in a dry run)."""
    proc = snakemake(workdir, "-n", "-p", *args)
    return [
        json.loads(m) for m in re.findall(r"ferflow train [^\n]*?--settings '(\{[^']*)'", proc.stdout + proc.stderr)
    ]


def test_train_params_are_the_resolved_settings_without_runtime_keys_and_options_still_off(tmp_path: Path) -> None:
    """A run's params are its resolved settings (defaults the user relies on included), without the runtime keys
    and the options still at their off value; `ferflow train` resolves them back to the experiment's settings.
    Writing every default out, runtime keys and options set off included, plans the same params."""
    workdir = copy_workflow(tmp_path)
    planned = planned_settings(workdir)
    assert len(planned) == 4  # one sweep experiment and the final, two seeds
    off = {k for k, spec in OPTIONS.items() if "x-off" in spec}
    for settings in planned:
        assert {"loss", "optimizer"} <= set(settings)  # defaults nobody wrote
        assert "focal_gamma" not in settings and "momentum" not in settings  # unused under ce and adam
        assert not (set(RUNTIME_KEYS) | off) & set(settings), settings
        full = resolve_settings(settings)
        assert full["epochs"] in (1, 2) and defining_settings(full) == settings  # ferflow train reads them back
    written = tiny_with(workdir, "defaults.yaml", {"train": {**DEFAULTS, "epochs": 1, "threads": 1, "mixup": 0}})
    again = planned_settings(workdir, "--configfile", written)
    assert sorted(map(json.dumps, again)) == sorted(map(json.dumps, planned))  # the dry run's order varies


def test_runtime_switches_reach_ferflow_train_outside_the_params(tmp_path: Path) -> None:
    """compile and channels_last change how a run computes, not what it learns: the same params, passed as flags."""
    workdir = copy_workflow(tmp_path)
    planned = planned_settings(workdir)
    switched = tiny_with(workdir, "switched.yaml", {"train": {"compile": True, "channels_last": False}})
    assert sorted(map(json.dumps, planned_settings(workdir, "--configfile", switched))) == sorted(
        map(json.dumps, planned)
    )
    commands = re.findall(
        r"ferflow (?:train|search) [^\n]*", snakemake(workdir, "-n", "-p", "--configfile", switched).stdout
    )
    assert commands and all("--compile 1 --channels-last 0" in command for command in commands), commands


@pytest.mark.parametrize(
    "given, same_as",
    [
        ({"momentum": 0.5, "nesterov": True}, {}),  # adam uses neither
        ({"optimizer": "adamw", "momentum": 0.0}, {"optimizer": "adamw"}),
        ({"focal_gamma": 1.0}, {}),  # the loss is ce
        ({"compile": True, "channels_last": False}, {}),  # how it computes, not what it learns
        (
            {"distillation": {"teacher": "resnet/final", "temperature": 2, "weight": 0.5, "ensemble": False}},
            {"distillation": {"teacher": "resnet/final", "temperature": 2, "weight": 0.5}},
        ),
    ],
)
def test_an_option_a_run_does_not_use_is_no_param(given: dict[str, Any], same_as: dict[str, Any]) -> None:
    assert defining_settings(given) == defining_settings(same_as)


def test_an_option_a_run_uses_is_a_param() -> None:
    sgd, focal = {"optimizer": "sgd"}, {"loss": "focal"}
    assert defining_settings({**sgd, "momentum": 0.5}) != defining_settings(sgd)
    assert defining_settings({**sgd, "nesterov": True}) != defining_settings(sgd)
    assert defining_settings({**focal, "focal_gamma": 1.0}) != defining_settings(focal)
    assert defining_settings(sgd)["momentum"] == DEFAULTS["momentum"]  # a default the run relies on


def test_writing_defaults_out_or_setting_options_off_retrains_nothing(tiny_run: Path) -> None:
    """On a finished run: every training default written out (numbers as floats, options at their off value)
    replans nothing; an option switched on retrains."""
    defaults = {**DEFAULTS, "epochs": 1, "lr": 0.001, "augmentation": {"rotation": 5.0, "zoom": 0.0}}
    written = tiny_with(tiny_run, "defaults.yaml", {"train": defaults})
    assert planned_rules(tiny_run, "--configfile", written) == {}
    jobs = planned_rules(tiny_run, "--configfile", tiny_with(tiny_run, "mixup.yaml", {"train": {"mixup": 0.2}}))
    assert jobs["train"] == 6


def test_a_changed_default_changes_the_params_of_the_runs_relying_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A later version's default of lr changes the params of a run that left lr out, not of one that wrote it."""
    before = {"relying": defining_settings({}), "writing": defining_settings({"lr": 1e-3})}
    monkeypatch.setitem(settings_module.DEFAULTS, "lr", 0.05)
    assert defining_settings({}) != before["relying"] and defining_settings({})["lr"] == 0.05
    assert defining_settings({"lr": 1e-3}) == before["writing"]


def test_a_new_option_off_by_default_changes_no_params(monkeypatch: pytest.MonkeyPatch) -> None:
    """An option a later version adds, off by default (its `x-off`), leaves every finished run's params as
    they were; set on, it enters them."""
    before = [defining_settings(given) for given in ({}, {"mixup": 0.2}, {"augmentation": {"zoom": 0.1}})]
    schema = copy.deepcopy(config.schema())
    new = {"type": "number", "minimum": 0, "x-off": 0}
    schema["$defs"]["experiment"]["properties"]["sharpen"] = new
    monkeypatch.setattr(config, "schema", lambda: schema)
    monkeypatch.setattr(settings_module, "OPTIONS", schema["$defs"]["experiment"]["properties"])
    monkeypatch.setattr(settings_module, "DEFAULTS", {**settings_module.DEFAULTS, "sharpen": 0.0})
    after = [defining_settings(given) for given in ({}, {"mixup": 0.2}, {"augmentation": {"zoom": 0.1}})]
    assert after == before
    assert defining_settings({"sharpen": 0.5})["sharpen"] == 0.5


def test_an_option_s_off_value_is_its_default() -> None:
    """`ferflow train` fills a left-out option with its default: the params may leave out only options whose
    default is their off value."""
    declared = {k: spec["x-off"] for k, spec in OPTIONS.items() if "x-off" in spec}
    declared |= {
        f"augmentation.{k}": spec["x-off"]
        for k, spec in OPTIONS["augmentation"]["properties"].items()
        if "x-off" in spec
    }
    assert {"mixup", "ema", "distillation", "augmentation.zoom"} <= set(declared)
    for key, off in declared.items():
        section, _, name = key.rpartition(".")
        assert default(".".join(filter(None, ["train", section, name]))) == off, key


def test_an_auto_final_distils_from_the_teacher_of_the_experiment_its_selection_chose(
    tiny_run: Path, tmp_path: Path
) -> None:
    """`finals: auto`: the final trains with the chosen sweep experiment's settings, distillation teacher
    included; a teacher in `models.<m>.final` (ignored under auto) is no input."""
    workdir = tmp_path / "auto"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    teacher = {"temperature": 4.0, "weight": 0.5}
    overlay = tiny_with(
        workdir,
        "auto.yaml",
        {
            "models": {
                "resnet": {
                    "select": ["adam_lr3_dropout0"],
                    "final": {"epochs": 2, "distillation": {"teacher": "resnet/adam_lr3_dropout0", **teacher}},
                }
            },
        },
    )
    selection = "results/tiny/runs/resnet/selection.json"
    auto = ("--configfile", overlay, "--config", "finals=auto", "--")
    snakemake(workdir, *auto, selection)
    final = "results/tiny/runs/resnet/final/seed1/history.csv"
    proc = snakemake(workdir, "-n", "-p", *auto, final)
    assert "ferflow train" in proc.stdout and "--teacher" not in proc.stdout
    record = json.loads((workdir / selection).read_text())
    record["settings"]["distillation"] = {"teacher": "resnet/adam_lr3_dropout0", **teacher}
    (workdir / selection).write_text(json.dumps(record))
    proc = snakemake(workdir, "-n", "-p", *auto, final)
    assert "--teacher results/tiny/runs/resnet/adam_lr3_dropout0/seed1/best.pt" in proc.stdout
