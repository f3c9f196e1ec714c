"""ferflow.layout: the results layout the Snakefile and the package share."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferflow.errors import FerflowError
from ferflow.layout import Layout, Run, run_of

LAYOUT = Layout("results/x", "svg")


def test_paths_of_a_run_and_of_the_deployed_model() -> None:
    assert LAYOUT.run_dir("resnet", "final", 2) == "results/x/runs/resnet/final/seed2"
    assert LAYOUT.run_file("resnet", "adam", 1, "val_metrics") == "results/x/runs/resnet/adam/seed1/val_metrics.json"
    assert LAYOUT.run_figure("resnet", "adam", 1, "curves") == "results/x/runs/resnet/adam/seed1/figures/curves.svg"
    assert LAYOUT.deployed_file("resnet", "checkpoint") == "results/x/runs/resnet/final/best.pt"
    assert LAYOUT.deployed_file("resnet", "record") == "results/x/runs/resnet/final/deployed.json"
    assert LAYOUT.stage_files("rgb")["val"] == "results/x/data/rgb/val.npz"
    assert LAYOUT.log("report") == "results/x/logs/report/report.log"
    assert LAYOUT.log("evaluate", "m", "e", "seed1") == "results/x/logs/evaluate/m/e/seed1.log"
    with pytest.raises(KeyError):
        LAYOUT.run_file("resnet", "adam", 1, "histroy")  # a typo is an error, not a new file name


def test_snakemake_wildcards_pass_through() -> None:
    pattern = LAYOUT.run_file("{model}", "{experiment}", "{seed}", "history")
    assert pattern == "results/x/runs/{model}/{experiment}/seed{seed}/history.csv"
    assert pattern.format(model="resnet", experiment="a", seed=3) == LAYOUT.run_file("resnet", "a", 3, "history")


def test_run_of_parses_what_the_layout_builds() -> None:
    run = Run("mobilenetv2", "adam_lr3_drop0_wd1e4", 12)
    for what in ("history", "metrics", "best"):
        assert run_of(LAYOUT.of_run(run, what)) == run
    assert run_of(Path(LAYOUT.run_dir(run.model, run.experiment, run.seed))) == run
    assert run.name == "mobilenetv2/adam_lr3_drop0_wd1e4/seed12"
    for path in ("results/x/runs/resnet/final/best.pt", "history.csv", "runs/resnet/a/seedx/history.csv"):
        with pytest.raises(FerflowError, match="not in a run folder"):
            run_of(path)
