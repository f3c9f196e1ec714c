"""The results layout: every path the pipeline writes under ``results/<dataset>/``, defined once.

The Snakefile names its rules' inputs and outputs with it (``workflow/rules/common.smk`` imports
:class:`Layout`), and the commands that read result files (tables, figures, report, seed choice) find
and name them with it. Its methods take plain strings, so Snakemake wildcards pass through:
``Layout("results/x").run_file("{model}", "{experiment}", "{seed}", "history")``.

::

    data/<stage>/{train,val,test}.npz summary.json     a data stage (raw, affectnet, balanced, rgb)
    runs/<model>/<experiment>/seed<k>/                  one training run: history.csv best.pt last.pt
                                                        metrics.json val_metrics.json tsne.csv figures/
    runs/<model>/final/best.pt deployed.json           the deployed seed of a final (+ model.onnx ...)
    runs/<model>/<experiment>/soft_labels.npz          its seeds' crop-averaged training-image probabilities
    runs/<model>/selection.json                        finals: auto, the chosen sweep experiment
    search/<model>.db  search/<model>/trial<k>/ worker<k>.json best.json   an architecture's Optuna search
    crossdata/<dataset>/<model>.json <model>.csv        a deployed model on faces from elsewhere (evaluation.datasets)
    videos/frames/<name>.csv <name>.png videos/tracks.csv   the batch-video target (config videos)
    tables/  figures/  figures/data/  report/index.html  logs/  benchmarks/
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import PurePath

from ferflow.errors import FerflowError
from ferflow.storage import SPLITS

FINAL = "final"  # the experiment name of an architecture's final run, and the folder of its deployed model
SEARCH = "search"  # the sweep experiment trained with the best settings of an architecture's Optuna search
RUN_FILES = {
    "history": "history.csv",
    "best": "best.pt",
    "log": "train.log",
    "metrics": "metrics.json",
    "per_class": "per_class.csv",
    "confusion": "confusion.csv",
    "predictions": "predictions.csv",
    "val_metrics": "val_metrics.json",
    "tsne": "tsne.csv",
}
"""The files of a run folder (``last.pt``, the resume state, is none of them: no rule declares it)."""
DEPLOYED_FILES = {
    "checkpoint": "best.pt",
    "record": "deployed.json",
    "onnx": "model.onnx",
    "onnx_check": "onnx_check.json",
    "int8": "model.int8.onnx",
    "int8_check": "int8_check.json",
    "latency": "latency.json",
}
"""The files of an architecture's deployed model (``runs/<model>/final/``)."""
CROSSDATA_FILES = {"metrics": ".json", "predictions": ".csv"}
"""The files of a deployed model scored on a dataset of ``evaluation.datasets`` (``crossdata/<dataset>/<model>``)."""
VIDEO_FILES = {"csv": ".csv", "plot": ".png"}
"""The files of each video of the batch-video target (``videos/frames/<name><suffix>``)."""
RUN_FIGURES = ("curves", "per_class", "confusion", "tsne")
DATA_FIGURES = ("samples", "distribution", "tsne_raw")
SEARCH_FIGURES = ("history", "importances")  # a search's optimisation history and parameter importances
TIME_FIGURE = "time_to_accuracy"  # the study figure of validation scores against training wall minutes
_RUN_DIR = re.compile(r"(?:^|/)runs/([^/]+)/([^/]+)/seed(\d+)$")


@dataclass(frozen=True, order=True)
class Run:
    """One training run: an architecture's experiment trained with one seed."""

    model: str
    experiment: str
    seed: int

    @property
    def name(self) -> str:
        """``<model>/<experiment>/seed<k>``, the run's folder under ``runs/``."""
        return f"{self.model}/{self.experiment}/seed{self.seed}"

    @property
    def experiment_name(self) -> str:
        """``<model>/<experiment>``, what the run's seeds share."""
        return f"{self.model}/{self.experiment}"


def run_of(path: str | os.PathLike[str]) -> Run:
    """The run of a run folder (``.../runs/<model>/<experiment>/seed<k>``) or of a file directly in it."""
    posix = PurePath(path).as_posix().rstrip("/")
    for candidate in (posix, posix.rsplit("/", 1)[0]):
        match = _RUN_DIR.search(candidate)
        if match:
            return Run(match.group(1), match.group(2), int(match.group(3)))
    raise FerflowError(f"{path}: not in a run folder (runs/<model>/<experiment>/seed<k>/)")


@dataclass(frozen=True)
class Layout:
    """The paths under ``root`` (``results/<dataset>``); figures in format ``fmt``."""

    root: str
    fmt: str = "png"

    def _path(self, *parts: object) -> str:
        return "/".join([str(self.root).rstrip("/"), *map(str, parts)])

    # data stages
    def stage_dir(self, stage: str) -> str:
        return self._path("data", stage)

    def split_file(self, stage: str, split: str) -> str:
        return self._path("data", stage, f"{split}.npz")

    def summary(self, stage: str) -> str:
        return self._path("data", stage, "summary.json")

    def stage_files(self, stage: str) -> dict[str, str]:
        """The split files and summary of one data stage, keyed by split name and ``summary``."""
        return {**{split: self.split_file(stage, split) for split in SPLITS}, "summary": self.summary(stage)}

    def tsne_raw(self) -> str:
        return self._path("data", "tsne_raw.csv")

    # training runs
    def run_dir(self, model: str, experiment: str, seed: int | str) -> str:
        return self._path("runs", model, experiment, f"seed{seed}")

    def run_file(self, model: str, experiment: str, seed: int | str, what: str) -> str:
        """A file of a run folder, ``what`` a key of :data:`RUN_FILES`."""
        return f"{self.run_dir(model, experiment, seed)}/{RUN_FILES[what]}"

    def of_run(self, run: Run, what: str) -> str:
        """:meth:`run_file` of a :class:`Run`."""
        return self.run_file(run.model, run.experiment, run.seed, what)

    def soft_labels(self, model: str, experiment: str) -> str:
        """The seed ensemble of an experiment as a distillation teacher: its soft labels of the training images."""
        return self._path("runs", model, experiment, "soft_labels.npz")

    def run_figure(self, model: str, experiment: str, seed: int | str, name: str) -> str:
        return f"{self.run_dir(model, experiment, seed)}/figures/{name}.{self.fmt}"

    def selection(self, model: str) -> str:
        """``finals: auto``: the sweep experiment an architecture's final trains with."""
        return self._path("runs", model, "selection.json")

    # an architecture's Optuna search: the study's storage, its trials' run folders, its workers and best trial
    def search_dir(self, model: str) -> str:
        """``search/<model>/``: ``trial<k>/`` run folders, ``worker<k>.json``, ``best.json``; the study's storage
        is this path with ``.db`` (SQLite) or ``.journal`` appended."""
        return self._path("search", model)

    def search_worker(self, model: str, worker: int | str) -> str:
        return f"{self.search_dir(model)}/worker{worker}.json"

    def search_best(self, model: str) -> str:
        """The best trial and the settings the experiment ``search`` trains with."""
        return f"{self.search_dir(model)}/best.json"

    def search_table(self, model: str) -> str:
        """The report's table of a search's trials."""
        return self.table(f"search_{model}")

    def search_figure(self, model: str, name: str) -> str:
        """A figure of a search, ``name`` one of :data:`SEARCH_FIGURES`."""
        return self.study_figure(f"search_{model}_{name}")

    # the deployed model of each final: a path that does not change with the number of seeds
    def deployed_dir(self, model: str) -> str:
        return self._path("runs", model, FINAL)

    def deployed_file(self, model: str, what: str) -> str:
        """A file of the deployed model, ``what`` a key of :data:`DEPLOYED_FILES`."""
        return f"{self.deployed_dir(model)}/{DEPLOYED_FILES[what]}"

    # faces from elsewhere: each deployed model scored on each of evaluation.datasets
    def crossdata_file(self, dataset: str, model: str, what: str) -> str:
        """``crossdata/<dataset>/<model>.json`` (``metrics``) or ``<model>.csv`` (``predictions``)."""
        return self._path("crossdata", dataset, f"{model}{CROSSDATA_FILES[what]}")

    # study outputs
    def video_file(self, video: str, what: str) -> str:
        """A video's output of the batch-video target: ``csv`` (per face per analysed frame) or ``plot``."""
        return self._path("videos", "frames", f"{video}{VIDEO_FILES[what]}")

    def video_summary(self) -> str:
        """The batch-video target's table: one row per face track of every video."""
        return self._path("videos", "tracks.csv")

    def table(self, name: str, ext: str = "csv") -> str:
        return self._path("tables", f"{name}.{ext}")

    def study_figure(self, name: str) -> str:
        return self._path("figures", f"{name}.{self.fmt}")

    def data_figure(self, name: str) -> str:
        return self._path("figures", "data", f"{name}.{self.fmt}")

    def report(self) -> str:
        return self._path("report", "index.html")

    def log(self, rule: str, *names: str) -> str:
        """``logs/<rule>/<names...>.log`` (the rule's name alone when no names are given)."""
        return self._path("logs", rule, *(names or (rule,))) + ".log"

    def benchmark(self, rule: str, *names: str) -> str:
        return self._path("benchmarks", rule, *(names or (rule,))) + ".tsv"
