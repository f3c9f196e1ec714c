"""MLflow runs of the pipeline: ``ferflow train`` opens one per run folder (params: the resolved settings; tags:
model, experiment, seed, settings hash; every epoch's metrics; best.pt), ``ferflow evaluate`` adds the test and
val scores and ``ferflow export-onnx`` the ONNX model of the deployed seed. A run is found again by its folder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ferflow.errors import FerflowError
from ferflow.tracking.logged import EPOCH_METRICS, FINAL_METRICS, flat

RUN_DIR_TAG = "ferflow.run_dir"  # the run folder (absolute): how evaluate and export find train's MLflow run
ARTIFACTS = "mlartifacts"  # beside a SQLite store: its runs' artifacts


def client(uri: str) -> Any:
    """An MlflowClient of ``uri``; a missing mlflow package is one line saying how to install it."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise FerflowError(
            "tracking.mlflow is set but mlflow is not installed: pip install -e '.[mlflow]' (or unset it)"
        ) from None
    return MlflowClient(tracking_uri=uri)


def experiment_id(mlflow: Any, uri: str, name: str) -> str:
    """The MLflow experiment ``name`` (the dataset), created on first use; a SQLite store keeps its artifacts
    in ``mlartifacts/`` beside the database file."""
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).resolve().parent / ARTIFACTS).as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


def latest_run(mlflow: Any, experiment: str, run_dir: Path) -> Any | None:
    """The most recent MLflow run of a run folder, or None."""
    runs = mlflow.search_runs(
        [experiment], f"tags.`{RUN_DIR_TAG}` = '{run_dir.resolve()}'", max_results=1, order_by=["start_time DESC"]
    )
    return runs[0] if runs else None


def _metrics(values: dict[str, float], step: int) -> list[Any]:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(key, float(value), now, step) for key, value in values.items()]


class MlflowRun:
    """The MLflow run of one training run folder (a resumed training continues its unfinished run)."""

    def __init__(
        self, tracking: dict[str, Any], out_dir: Path, run: dict[str, Any], settings: dict[str, Any], start: int
    ) -> None:
        self.mlflow = client(tracking["mlflow"])
        from mlflow.entities import Param

        experiment = experiment_id(self.mlflow, tracking["mlflow"], tracking["mlflow_experiment"])
        previous = latest_run(self.mlflow, experiment, out_dir) if start > 1 else None
        self.logged = 0  # the last epoch this MLflow run holds: logging one again would add a second point
        if previous is not None and previous.data.tags.get("settings_hash") == run["settings_hash"]:
            self.run_id = previous.info.run_id
            steps = [m.step for m in self.mlflow.get_metric_history(self.run_id, next(iter(EPOCH_METRICS)))]
            self.logged = max(steps, default=0)
            return
        tags = {
            RUN_DIR_TAG: str(out_dir.resolve()),
            "model": run["model"],
            "experiment": run["experiment"],
            "seed": str(run["seed"]),
            "settings_hash": run["settings_hash"],
        }
        name = f"{run['model']}/{run['experiment']}/seed{run['seed']}"
        self.run_id = self.mlflow.create_run(experiment, tags=tags, run_name=name).info.run_id
        params = [Param(key, str(value)) for key, value in flat(settings).items()]
        self.mlflow.log_batch(self.run_id, params=params)

    def epoch(self, row: dict[str, float]) -> None:
        if row["epoch"] <= self.logged:
            return
        values = {name: row[column] for name, column in EPOCH_METRICS.items()}
        self.mlflow.log_batch(self.run_id, metrics=_metrics(values, int(row["epoch"])))

    def finish(self, best: dict[str, float], checkpoint: Path) -> None:
        values = {name: best[key] for name, key in FINAL_METRICS.items()}
        self.mlflow.log_batch(self.run_id, metrics=_metrics(values, int(best["epoch"])))
        self.mlflow.log_artifact(self.run_id, str(checkpoint))
        self.mlflow.set_terminated(self.run_id)


def log_to_run(
    tracking: dict[str, Any], run_dir: Path, metrics: dict[str, float], artifact: Path | None = None
) -> bool:
    """Add ``metrics`` (and a file) to the latest MLflow run of ``run_dir``; False when it has none."""
    mlflow = client(tracking["mlflow"])
    found = latest_run(mlflow, experiment_id(mlflow, tracking["mlflow"], tracking["mlflow_experiment"]), run_dir)
    if found is None:
        return False
    mlflow.log_batch(found.info.run_id, metrics=_metrics(metrics, 0))
    if artifact is not None:
        mlflow.log_artifact(found.info.run_id, str(artifact))
    return True
