"""Optuna studies of the hyperparameter search (config ``models.<m>.search``), shared by the search commands
(``ferflow search``, ``search-best``) and the report's search figures.

A study maximises a trial's best per-epoch val macro-F1. Its name carries a digest of what defines it (the base
settings, the space, the trial epochs, the pruning and the training data), so a changed search starts a new study
in the same storage while a killed or extended one (more ``trials``) continues. Storage: a SQLite file (the
default, one host), an Optuna journal file (``journal:<path>``: a network file system, several hosts), or any
RDB URL Optuna accepts (``postgresql://...``).

A worker that dies (killed, out of memory, its node lost) leaves its trial RUNNING, which would count towards
``trials`` forever. Every worker therefore fails such trials before counting (:func:`fail_abandoned`): its own from
an earlier life, those whose process on this host is gone and, in an RDB storage, those whose Optuna heartbeat
stopped (a worker on another host).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from ferflow import config
from ferflow.errors import FerflowError

JOURNAL = "journal:"  # storage prefix of an Optuna journal file
SQLITE = "sqlite:///"
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)  # what counts towards `trials`
PRUNER_STARTUP_TRIALS = 3  # the median pruner prunes nothing before this many trials have finished
HEARTBEAT_S = 60  # how often a worker's running trial beats in an RDB storage
GRACE_S = 600  # a running trial whose heartbeat stopped this long ago belongs to a dead worker


def resolve_spec(given: dict[str, Any]) -> dict[str, Any]:
    """A search's settings with the schema's defaults, checked; a space key must be a training setting."""
    node = config.schema()["$defs"]["search"]
    spec = {**{k: v["default"] for k, v in node["properties"].items() if "default" in v}, **given}
    config.check("search", spec, "search setting")
    settings = config.schema()["$defs"]["experiment"]["properties"]
    unknown = sorted(set(spec["space"]) - set(settings))
    if unknown:
        raise FerflowError(f"search space: {unknown[0]} is not a training setting (allowed: {', '.join(settings)})")
    for name, dimension in spec["space"].items():
        (kind, values), *_ = dimension.items()
        if kind != "choice" and values[0] > values[1]:
            raise FerflowError(f"search space: {name} {kind} {values} runs high to low; write it [low, high]")
    return spec


def storage_url(kind: str, base: str) -> str:
    """The storage of setting ``storage`` for the study files ``<base>.db`` / ``<base>.journal``."""
    if kind == "sqlite":
        return f"{SQLITE}{base}.db"
    if kind == "journal":
        return f"{JOURNAL}{base}.journal"
    return kind


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage: journal files lock with open(O_EXCL) (safe on NFS); SQLite waits up to a minute."""
    for prefix in (JOURNAL, SQLITE):
        if url.startswith(prefix):
            Path(url.removeprefix(prefix)).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith(JOURNAL):
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        path = url.removeprefix(JOURNAL)
        return optuna.storages.JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith(SQLITE) else None
    try:
        with warnings.catch_warnings():  # the heartbeat is experimental in Optuna 4 and 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S
            )
    except Exception as exc:  # SQLAlchemy and Optuna raise many types for a URL they cannot use
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FerflowError(f"{url}: not a storage Optuna can open ({first})") from None


def study_name(model: str, base: dict[str, Any], spec: dict[str, Any], data: str) -> str:
    """``<model>-<digest>``: the digest of what defines the study (not ``trials``: more trials continue it)."""
    defining = {"base": base, "space": spec["space"], "epochs": spec["epochs"], "prune": spec["prune"], "data": data}
    return f"{model}-{hashlib.blake2b(json.dumps(defining, sort_keys=True).encode(), digest_size=5).hexdigest()}"


def load(url: str, name: str) -> optuna.Study:
    """An existing study; a missing one is a one-line error naming it."""
    try:
        return optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError:
        raise FerflowError(f"{url}: no study {name}") from None


def sampler(seed: int, worker: int, trials_so_far: int) -> optuna.samplers.TPESampler:
    """The TPE sampler of a worker's next trial, seeded by (seed, worker, trials in the study): reproducible,
    different for each worker, and a resumed worker does not draw its first trials' parameters again."""
    state = np.random.SeedSequence([seed, worker, trials_so_far]).generate_state(1)[0]
    return optuna.samplers.TPESampler(seed=int(state))


def suggest(trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One value per setting of the space: ``log`` and ``range`` floats, ``int`` integers, ``choice``."""
    params: dict[str, Any] = {}
    for name, dimension in space.items():
        (kind, values), *_ = dimension.items()
        if kind == "choice":
            params[name] = trial.suggest_categorical(name, values)
        elif kind == "int":
            params[name] = trial.suggest_int(name, *values)
        else:
            params[name] = trial.suggest_float(name, *values, log=kind == "log")
    return params


def claim(trial: optuna.Trial, worker: int) -> None:
    """Record on ``trial`` the worker that runs it: its index, host and process (:func:`fail_abandoned`)."""
    trial.set_user_attr("worker", worker)
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def fail_abandoned(study: optuna.Study, worker: int) -> list[int]:
    """Mark failed the RUNNING trials no worker runs any more: those of ``worker`` (this worker, restarted after a
    kill), those whose process on this host has ended, and, in an RDB storage, those whose heartbeat stopped
    :data:`GRACE_S` ago. Returns their numbers."""
    running = (optuna.trial.TrialState.RUNNING,)
    before = {t.number for t in study.get_trials(deepcopy=False, states=running)}
    with warnings.catch_warnings():  # experimental in Optuna 4 and 5; a no-op without a heartbeat (journal files)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    failed = sorted(before - {t.number for t in study.get_trials(deepcopy=False, states=running)})
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=running):
        attrs = trial.user_attrs
        if attrs.get("worker") == worker or (attrs.get("host") == host and not alive(int(attrs.get("pid", 0)))):
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            failed.append(trial.number)
    return failed


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=FINISHED)


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value (best val macro-F1), epochs trained, worker, seconds, params."""
    rows = [
        {
            "trial": t.number,
            "state": t.state.name.lower(),
            "val_macro_f1": t.value,
            "epochs": len(t.intermediate_values),
            "worker": t.user_attrs.get("worker"),
            "seconds": t.duration.total_seconds() if t.duration else None,
            **t.params,
        }
        for t in study.get_trials(deepcopy=False)
    ]
    return pd.DataFrame(rows)
