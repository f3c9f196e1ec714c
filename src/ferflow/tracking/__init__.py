"""Experiment trackers of a training run: TensorBoard event files (on by default) and MLflow (opt in).

Both are runtime settings (config ``tracking``): they change what a run reports, never what it computes, so the
Snakefile hands them to the commands in the environment (:data:`ENV`, JSON) rather than as rule params, and
switching them replans nothing. By hand, ``ferflow train --no-tensorboard --mlflow URI`` override it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ferflow import config
from ferflow.errors import FerflowError
from ferflow.layout import SPLITS, run_of

ENV = "FERFLOW_TRACKING"
"""The environment variable holding the config's ``tracking`` section as JSON (set by the Snakefile)."""
MLFLOW_DB = "mlflow.db"  # the embedded MLflow store of ``tracking.mlflow: true``, in results/<dataset>/


def mlflow_uri(value: bool | str, results: str) -> str | None:
    """The MLflow tracking URI of config ``tracking.mlflow``: ``true`` is the SQLite file under ``results``."""
    if value is True:
        return f"sqlite:///{results}/{MLFLOW_DB}"
    return value or None


def environment(tracking: dict[str, Any], results: str) -> str:
    """The value of :data:`ENV` for a validated config's ``tracking`` section; the MLflow experiment is named
    after the results folder (the dataset)."""
    resolved = {**tracking, "mlflow": mlflow_uri(tracking["mlflow"], results), "mlflow_experiment": Path(results).name}
    return json.dumps(resolved, sort_keys=True)


def add_arguments(parser: argparse.ArgumentParser, tensorboard: bool = True) -> None:
    """``--tensorboard/--no-tensorboard`` and ``--mlflow``; left out, they come from :data:`ENV`, else the schema."""
    if tensorboard:
        parser.add_argument(
            "--tensorboard",
            action=argparse.BooleanOptionalAction,
            help=f"event files in the run folder (default: ${ENV}, else config tracking.tensorboard)",
        )
    parser.add_argument("--mlflow", help=f"MLflow tracking URI to log the run to (default: ${ENV}, else none)")


def resolve(args: argparse.Namespace) -> dict[str, Any]:
    """The tracking settings of a command: its flags over :data:`ENV` over the schema's defaults."""
    settings = {**config.defaults("tracking"), "mlflow": None, "mlflow_experiment": "ferflow"}
    text = os.environ.get(ENV)
    if text:
        try:
            settings.update(json.loads(text))
        except json.JSONDecodeError:
            raise FerflowError(f"environment variable {ENV}: not valid JSON") from None
    if getattr(args, "tensorboard", None) is not None:
        settings["tensorboard"] = args.tensorboard
    if getattr(args, "mlflow", None):
        settings["mlflow"] = args.mlflow
    return settings


def settings_hash(settings: dict[str, Any]) -> str:
    """A short digest of the settings that define a run (an MLflow tag: a rerun of the same is recognisable)."""
    return hashlib.blake2b(json.dumps(settings, sort_keys=True).encode(), digest_size=6).hexdigest()


class Tracker(Protocol):
    """What a tracker of a training run receives: each epoch's history row, then the best epoch's row and the
    checkpoint written."""

    def epoch(self, row: dict[str, float]) -> None: ...

    def finish(self, best: dict[str, float], checkpoint: Path) -> None: ...


class Trackers:
    """The trackers of one training run: each epoch's history row and the run's outcome go to every one. A tracker
    that fails (a runtime setting: an unreachable MLflow server, a full disk) is reported once and switched off;
    the run goes on."""

    def __init__(self, members: list[Tracker]) -> None:
        self.members = members

    def _each(self, call: Callable[[Tracker], None]) -> None:
        for member in list(self.members):
            try:
                call(member)
            except Exception as exc:  # any failure of a tracker's library: the training matters more
                self.members.remove(member)
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                print(f"warning: {type(member).__name__} failed, switched off for this run: {first}", flush=True)

    def epoch(self, row: dict[str, float]) -> None:
        self._each(lambda member: member.epoch(row))

    def finish(self, best: dict[str, float], checkpoint: Path) -> None:
        self._each(lambda member: member.finish(best, checkpoint))


def open_run(
    args: argparse.Namespace, out_dir: Path, run: dict[str, Any], settings: dict[str, Any], start: int
) -> Trackers:
    """The trackers the settings ask for, opened on run folder ``out_dir`` whose training starts at epoch
    ``start`` (> 1: resumed; what an earlier attempt logged from ``start`` on is dropped)."""
    tracking = resolve(args)
    members: list[Tracker] = []
    if tracking["mlflow"]:  # first: a missing mlflow package stops the run before any file is written
        from ferflow.tracking.mlflow_runs import MlflowRun

        members.append(MlflowRun(tracking, out_dir, run, settings, start))
    if tracking["tensorboard"]:
        from ferflow.tracking.tensorboard import TensorBoardRun

        members.append(TensorBoardRun(out_dir, settings, start))
    return Trackers(members)


def log_to_mlflow(
    args: argparse.Namespace, run_dir: Path, metrics: dict[str, float], artifact: Path | None = None
) -> None:
    """With MLflow on, add metrics (and a file) to the MLflow run of ``run_dir``, when that is a run folder."""
    tracking = resolve(args)
    try:
        run_of(run_dir)
    except FerflowError:
        return
    if not tracking["mlflow"]:
        return
    from ferflow.tracking.mlflow_runs import log_to_run

    if not log_to_run(tracking, run_dir, metrics, artifact):
        print(f"mlflow: {tracking['mlflow']} has no run of {run_dir}; not logged", flush=True)


def log_evaluation(args: argparse.Namespace, checkpoint: str | None, data: str, metrics: dict[str, Any]) -> None:
    """``ferflow evaluate`` of a run's best.pt on its test or val split file: ``<split>/accuracy`` and
    ``<split>/macro_f1`` go to the run's MLflow run."""
    split = Path(data).stem
    if checkpoint is not None and split in SPLITS:
        scores = {f"{split}/{key}": metrics[key] for key in ("accuracy", "macro_f1")}
        log_to_mlflow(args, Path(checkpoint).parent, scores)
