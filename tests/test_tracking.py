"""Trackers read back: TensorBoard's event files hold history.csv's numbers (a resumed run without duplicated
epochs) and the HParams plugin the run's settings; MLflow holds the run's params, tags, per-epoch metrics, test
and val scores, best.pt and the ONNX export; a missing mlflow package is one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from datastage import synthetic_stage
from ferflow import checkpoint, cli, tracking
from ferflow.tracking.logged import EPOCH_METRICS
from ferflow.tracking.tensorboard import EVENTS_GLOB
from ferflow.train.settings import defining_settings
from interrupt import kill_after_first_epoch
from test_incremental import planned_rules, tiny_with
from training import train_args

BASE = {"epochs": 3, "batch_size": 32, "max_train_batches": 2, "threads": 2, "amp": False}


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_stage(tmp_path_factory.mktemp("stage"))


def events(run_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run_dir))
    accumulator.Reload()
    return accumulator


def assert_events_match_history(run_dir: Path) -> None:
    """Every per-epoch tag has one value per epoch of history.csv, equal to it (events store float32)."""
    history = pd.read_csv(run_dir / "history.csv")
    accumulator = events(run_dir)
    for tag, column in EPOCH_METRICS.items():
        scalars = sorted(accumulator.Scalars(tag), key=lambda s: s.step)  # a resume adds a second event file
        assert [s.step for s in scalars] == list(history["epoch"]), tag
        assert [s.value for s in scalars] == pytest.approx(list(history[column]), rel=1e-6), tag


def test_events_equal_history_and_hold_the_settings(stage: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert cli.main(train_args(stage, out, BASE, model="resnet")) == 0
    assert_events_match_history(out)
    accumulator = events(out)
    plugin = accumulator.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(plugin["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["lr"].number_value == pytest.approx(1e-3)
    assert start.hparams["optimizer"].string_value == "adam"
    assert start.hparams["augmentation.rotation"].number_value == 5
    history = pd.read_csv(out / "history.csv")
    best = checkpoint.read(out / "best.pt")
    [final] = accumulator.Scalars("final/val_macro_f1")
    assert final.value == pytest.approx(history["val_macro_f1"].max(), rel=1e-6) and final.step == best["epoch"]


def test_a_resumed_run_appends_without_duplicating_epochs(stage: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    kill_after_first_epoch(train_args(stage, out, BASE, model="resnet"), out)
    assert checkpoint.read(out / "last.pt")["epoch"] < BASE["epochs"]
    assert cli.main(train_args(stage, out, BASE, model="resnet")) == 0
    assert len(list(out.glob(EVENTS_GLOB))) == 2  # the killed attempt's file and the resumed one's
    assert_events_match_history(out)
    # a rerun over the finished run retrains from scratch and replaces the events
    assert cli.main(train_args(stage, out, BASE, model="resnet")) == 0
    assert len(list(out.glob(EVENTS_GLOB))) == 1
    assert_events_match_history(out)


def test_a_failing_tracker_is_switched_off_and_the_run_goes_on(
    stage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tracker's error (a full disk, an unreachable server) is reported once; every epoch is still saved."""
    from ferflow.tracking.tensorboard import TensorBoardRun

    def full_disk(self: TensorBoardRun, row: dict[str, float]) -> None:
        assert checkpoint.read(tmp_path / "run" / "last.pt")["epoch"] == row["epoch"]  # saved before tracking
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(TensorBoardRun, "epoch", full_disk)
    assert cli.main(train_args(stage, tmp_path / "run", BASE, model="resnet")) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: TensorBoardRun failed, switched off for this run: [Errno 28] No space left on device"]
    assert list(pd.read_csv(tmp_path / "run" / "history.csv")["epoch"]) == [1, 2, 3]


def test_tensorboard_off_writes_no_events(stage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = {**BASE, "epochs": 1}
    monkeypatch.setenv(tracking.ENV, json.dumps({"tensorboard": False, "mlflow": None}))
    assert cli.main(train_args(stage, tmp_path / "env", one, model="resnet")) == 0
    monkeypatch.delenv(tracking.ENV)
    assert cli.main(train_args(stage, tmp_path / "flag", one, model="resnet", extra=("--no-tensorboard",))) == 0
    for name in ("env", "flag"):
        assert (tmp_path / name / "history.csv").exists() and not list((tmp_path / name).glob(EVENTS_GLOB))


def test_mlflow_run_holds_params_metrics_scores_and_artifacts(stage: Path, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    final = tmp_path / "results" / "x" / "runs" / "resnet" / "final"
    run_dir = final / "seed1"
    assert cli.main(train_args(stage, run_dir, BASE, model="resnet", seed=1, extra=("--mlflow", uri))) == 0
    for split, out in (("test", "metrics.json"), ("val", "val_metrics.json")):
        args = ["evaluate", "--checkpoint", str(run_dir / "best.pt"), "--data", str(stage / f"{split}.npz")]
        assert cli.main([*args, "--out", str(run_dir / out), "--mlflow", uri]) == 0
    shutil.copy(run_dir / "best.pt", final / "best.pt")  # the deployed seed
    export = ["export-onnx", "--checkpoint", str(final / "best.pt"), "--data", str(stage / "test.npz")]
    assert (
        cli.main(
            [*export, "--out", str(final / "model.onnx"), "--check-out", str(final / "check.json"), "--mlflow", uri]
        )
        == 0
    )

    client = MlflowClient(tracking_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name("ferflow").experiment_id])
    settings = checkpoint.read(run_dir / "best.pt")["settings"]
    assert run.data.tags["model"] == "resnet" and run.data.tags["seed"] == "1"
    assert run.data.tags["settings_hash"] == tracking.settings_hash(defining_settings(settings))
    assert run.data.params["lr"] == "0.001" and run.data.params["augmentation.shear"] == str(
        settings["augmentation"]["shear"]
    )
    history = pd.read_csv(run_dir / "history.csv")
    for name, column in EPOCH_METRICS.items():
        logged = client.get_metric_history(run.info.run_id, name)
        assert [m.step for m in logged] == list(history["epoch"]), name
        assert [m.value for m in logged] == pytest.approx(list(history[column])), name
    assert run.data.metrics["final/val_macro_f1"] == pytest.approx(history["val_macro_f1"].max())
    for split, out in (("test", "metrics.json"), ("val", "val_metrics.json")):
        scores = json.loads((run_dir / out).read_text())
        assert run.data.metrics[f"{split}/accuracy"] == pytest.approx(scores["accuracy"])
        assert run.data.metrics[f"{split}/macro_f1"] == pytest.approx(scores["macro_f1"])
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"best.pt", "model.onnx"}


def test_missing_mlflow_is_one_line(stage: Path, tmp_path: Path) -> None:
    """With mlflow not importable, ``--mlflow`` stops the run at once with one line saying how to install it."""
    fake = tmp_path / "site"
    (fake / "mlflow").mkdir(parents=True)
    (fake / "mlflow" / "__init__.py").write_text("raise ImportError('No module named mlflow')\n")
    out = tmp_path / "run"
    args = train_args(stage, out, {**BASE, "epochs": 1}, model="resnet", extra=("--mlflow", "sqlite:///x.db"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), *sys.path])}
    proc = subprocess.run([sys.executable, "-m", "ferflow.cli", *args], env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "pip install -e '.[mlflow]'" in proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_tiny_workflow_tracks_every_run_and_switching_trackers_replans_nothing(tiny_run: Path) -> None:
    runs = sorted((tiny_run / "results" / "tiny" / "runs").glob("*/*/seed*"))
    assert len(runs) == 6  # the sweep experiment, the search's and the final, two seeds
    for run in runs:
        assert_events_match_history(run)
    switched = tiny_with(tiny_run, "tracking.yaml", {"tracking": {"tensorboard": False, "mlflow": True}})
    assert planned_rules(tiny_run, "--configfile", switched) == {}
