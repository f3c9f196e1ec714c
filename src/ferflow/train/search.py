"""``ferflow search``: one worker of an architecture's Optuna search; ``ferflow search-best``: its best trial.

A worker trains trials with the trainer (:func:`ferflow.train.trainer.run`, the same engine and run folder as any
training, in ``<trials-dir>/trial<k>/``) until the study holds ``trials`` finished (complete or pruned) trials,
counting those other workers are running. A distilled search (``distillation`` in the base settings) passes
its teacher checkpoint or soft labels (``--teacher``, ``--soft-labels``) to every trial, and their digest is part of
the study's name: a retrained teacher starts a new study. Each epoch's val macro-F1 is reported to the median pruner.
Workers share a study through its storage; each has its own index (``--worker``), recorded on its trials with its
host and process, so that a worker restarted after a kill marks its own unfinished trial failed and carries on, and
one whose fellow worker died marks that one's failed (:func:`ferflow.study.fail_abandoned`): finished trials are
kept, and the study reaches its trials.

``search-best`` reads the study through the workers' records and writes the best trial and the settings the
sweep experiment ``search`` trains with: the base settings overlaid by the best parameters (the experiment's
epochs, not the trials').
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import optuna

from ferflow import study as studies
from ferflow.errors import FerflowError
from ferflow.layout import SEARCH
from ferflow.results import best_epoch, read_history
from ferflow.storage import (
    check_outputs,
    file_digest,
    load_split,
    parse_json_object,
    read_json,
    split_digest,
    write_json,
)
from ferflow.train import trainer
from ferflow.train.settings import RUNTIME_SWITCHES, SOFT_LABELS, TEACHER, defining_settings


def add_arguments_search(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="architecture")
    parser.add_argument("--data-dir", required=True, type=Path, help="data stage directory (train.npz, val.npz)")
    parser.add_argument("--trials-dir", required=True, type=Path, help="folder of the trials' run folders")
    parser.add_argument("--storage", required=True, help="sqlite:///<file>, journal:<file> or an RDB URL")
    parser.add_argument("--settings", default="{}", help="base training settings (JSON) the trials overlay")
    parser.add_argument("--search", required=True, help="the search (JSON): trials, epochs, space, prune")
    parser.add_argument("--model-options", default="{}", help="architecture options as a JSON object")
    parser.add_argument(
        "--seed", type=int, default=trainer.DEFAULT_SEED, help="training seed of every trial; seeds the sampler"
    )
    parser.add_argument("--worker", type=int, default=0, help="this worker's index (unique among those running)")
    parser.add_argument("--teacher", type=Path, help="distillation: the teacher checkpoint, passed to every trial")
    parser.add_argument("--soft-labels", type=Path, help="distillation: a seed ensemble's soft labels, to every trial")
    parser.add_argument("--out", required=True, type=Path, help="JSON record of the study and this worker's trials")
    parser.add_argument("--device", help="override the settings' device (forwarded to each trial's training)")
    parser.add_argument("--threads", type=int, help="override the settings' CPU threads")
    trainer.add_switch_arguments(parser)  # forwarded to each trial's training


def add_arguments_search_best(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", required=True, nargs="+", type=Path, help="the workers' JSON records")
    parser.add_argument("--out", required=True, type=Path, help="JSON: the best trial and the experiment's settings")


def train_trial(args: argparse.Namespace, trial: optuna.Trial, settings: dict[str, Any], prune: bool) -> float:
    """Train one trial with the trainer; returns its best val macro-F1. Pruning stops it after an epoch but
    the last."""

    def report(row: dict[str, float]) -> None:
        trial.report(row["val_macro_f1"], int(row["epoch"]))
        if prune and row["epoch"] < settings["epochs"] and trial.should_prune():
            raise optuna.TrialPruned()

    out = args.trials_dir / f"trial{trial.number}"
    argv = ["--model", args.model, "--experiment", f"trial{trial.number}", "--data-dir", str(args.data_dir)]
    argv += ["--out", str(out), "--settings", json.dumps(settings), "--model-options", args.model_options]
    argv += ["--seed", str(args.seed)]
    forwarded = ("device", "threads", *RUNTIME_SWITCHES, TEACHER, SOFT_LABELS)
    argv += [f"--{key.replace('_', '-')}={value}" for key in forwarded if (value := getattr(args, key)) is not None]
    parser = argparse.ArgumentParser()
    trainer.add_arguments(parser)
    trainer.run(parser.parse_args(argv), on_epoch=report)
    return float(best_epoch(read_history(out / "history.csv"))["val_macro_f1"])


def run_search(args: argparse.Namespace) -> int:
    spec = studies.resolve_spec(parse_json_object(args.search, "--search"))
    base = defining_settings(parse_json_object(args.settings, "--settings"))
    data = split_digest(load_split(args.data_dir / "train.npz"), load_split(args.data_dir / "val.npz"))
    teachers = [file_digest(path) for key in (TEACHER, SOFT_LABELS) if (path := getattr(args, key)) is not None]
    data = "/".join([data, *teachers])
    name = studies.study_name(args.model, base, spec, data)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=studies.PRUNER_STARTUP_TRIALS, n_warmup_steps=1)
    study = optuna.create_study(
        storage=studies.open_storage(args.storage),
        study_name=name,
        direction="maximize",
        pruner=pruner if spec["prune"] else optuna.pruners.NopPruner(),
        load_if_exists=True,
    )
    study.set_user_attr("base_settings", base)
    study.set_user_attr("search", spec)
    running = optuna.trial.TrialState.RUNNING
    ran: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        studies.claim(trial, args.worker)
        ran.append(trial.number)
        settings = {**base, **studies.suggest(trial, spec["space"])}
        if spec["epochs"]:
            settings["epochs"] = spec["epochs"]
        return train_trial(args, trial, settings, spec["prune"])

    while True:
        for number in studies.fail_abandoned(study, args.worker):
            print(f"trial {number}: left unfinished by a worker that died; marked failed", flush=True)
        others = len(study.get_trials(deepcopy=False, states=(running,)))
        if len(studies.finished(study)) + others >= spec["trials"]:
            break
        study.sampler = studies.sampler(args.seed, args.worker, len(study.get_trials(deepcopy=False)))
        study.optimize(objective, n_trials=1)
    done = len(studies.finished(study))
    print(f"study {name}: {done} of {spec['trials']} trials finished; worker {args.worker} ran {ran}")
    write_json(args.out, {"study": name, "storage": args.storage, "worker": args.worker, "trials": ran})
    return 0


def best_trial(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The best trial of the workers' study and the settings of the experiment ``search``."""
    names = {(r["storage"], r["study"]) for r in records}
    if len(names) != 1:
        raise FerflowError(f"--workers name {len(names)} different studies")
    (url, name), *_ = names
    study = studies.load(url, name)
    planned = study.user_attrs["search"]["trials"]
    done = studies.finished(study)
    if len(done) < planned:
        raise FerflowError(f"study {name} in {url}: {len(done)} of {planned} trials finished; run the search again")
    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in done):
        raise FerflowError(f"study {name} in {url}: every trial was pruned")
    best = study.best_trial
    settings = defining_settings({**study.user_attrs["base_settings"], **best.params})
    return {
        "experiment": SEARCH,
        "study": name,
        "storage": url,
        "trial": best.number,
        "val_macro_f1": best.value,
        "params": best.params,
        "finished_trials": len(done),
        "settings": settings,
    }


def run_search_best(args: argparse.Namespace) -> int:
    check_outputs([args.out], args.workers)
    record = best_trial([read_json(path) for path in args.workers])
    write_json(args.out, record)
    print(f"best trial {record['trial']}: val macro-F1 {record['val_macro_f1']:.4f} with {record['params']}")
    return 0
