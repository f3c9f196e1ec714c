"""ferflow search: the study read back (planned trials, per-epoch values reported, best parameters become the
experiment's settings), a killed search resumed without repeating finished trials, two workers sharing a study."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from conftest import copy_workflow, snakemake
from datastage import synthetic_stage
from ferflow import checkpoint, cli
from ferflow import study as studies
from ferflow.storage import file_digest, read_json
from ferflow.train.settings import defining_settings
from interrupt import kill_when_exists

BASE = {"epochs": 5, "batch_size": 32, "max_train_batches": 2, "threads": 1, "amp": False}
SEARCH = {"trials": 3, "epochs": 2, "space": {"lr": {"log": [1e-4, 1e-1]}, "dropout": {"range": [0.0, 0.5]}}}
FINISHED = {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_stage(tmp_path_factory.mktemp("stage"))


def search_args(stage: Path, root: Path, storage: str, worker: int = 0, search: dict | None = None) -> list[str]:
    """``ferflow search`` of resnet on ``stage``, trials under ``root``."""
    return [
        "search",
        *("--model", "resnet", "--data-dir", str(stage), "--trials-dir", str(root), "--storage", storage),
        *("--settings", json.dumps(BASE), "--search", json.dumps(search or SEARCH), "--worker", str(worker)),
        *("--out", str(root / f"worker{worker}.json")),
    ]


def study_of(root: Path, worker: int = 0) -> optuna.Study:
    record = read_json(root / f"worker{worker}.json")
    return studies.load(record["storage"], record["study"])


def test_study_holds_the_planned_trials_and_its_best_becomes_the_settings(stage: Path, tmp_path: Path) -> None:
    root = tmp_path / "resnet"
    assert cli.main(search_args(stage, root, f"sqlite:///{tmp_path}/resnet.db")) == 0
    study = study_of(root)
    assert len(study.trials) == SEARCH["trials"] and {t.state for t in study.trials} <= FINISHED
    for trial in study.trials:  # each epoch's val macro-F1 was reported; the value is the best of them
        history = pd.read_csv(root / f"trial{trial.number}" / "history.csv")
        assert list(trial.intermediate_values) == list(history["epoch"]) == [1, 2]
        assert list(trial.intermediate_values.values()) == list(history["val_macro_f1"])
        assert trial.value == history["val_macro_f1"].max()
        assert SEARCH["space"]["lr"]["log"][0] <= trial.params["lr"] <= SEARCH["space"]["lr"]["log"][1]
    assert cli.main(["search-best", "--workers", str(root / "worker0.json"), "--out", str(root / "best.json")]) == 0
    best = read_json(root / "best.json")
    assert best["params"] == study.best_params and best["trial"] == study.best_trial.number
    assert best["settings"] == defining_settings({**BASE, **study.best_params})
    assert best["settings"]["epochs"] == BASE["epochs"]  # the experiment's epochs, not the trials'
    # a rerun of a finished search trains nothing
    assert cli.main(search_args(stage, root, f"sqlite:///{tmp_path}/resnet.db")) == 0
    assert read_json(root / "worker0.json")["trials"] == [] and len(study_of(root).trials) == SEARCH["trials"]


def test_a_killed_search_resumes_without_repeating_finished_trials(stage: Path, tmp_path: Path) -> None:
    root, storage = tmp_path / "resnet", f"sqlite:///{tmp_path}/resnet.db"
    kill_when_exists(search_args(stage, root, storage), root / "trial1" / "last.pt")  # trial 0 finished
    [name] = optuna.get_all_study_names(storage)
    before = {t.number: (t.state, t.params, t.value) for t in studies.load(storage, name).trials}
    assert before[0][0] == optuna.trial.TrialState.COMPLETE and before[1][0] == optuna.trial.TrialState.RUNNING

    assert cli.main(search_args(stage, root, storage)) == 0
    study = study_of(root)
    assert sum(t.state in FINISHED for t in study.trials) == SEARCH["trials"]
    assert study.trials[0].state == before[0][0] and (study.trials[0].params, study.trials[0].value) == before[0][1:]
    assert study.trials[1].state == optuna.trial.TrialState.FAIL  # the killed one
    assert read_json(root / "worker0.json")["trials"] == list(range(2, SEARCH["trials"] + 1))


@pytest.mark.parametrize("storage", ["sqlite", "journal"])
def test_a_dead_worker_s_trial_is_failed_so_that_the_others_finish_the_study(
    stage: Path, tmp_path: Path, storage: str
) -> None:
    """Worker 1 dies during its first trial (SIGKILL) and is not restarted: worker 0 fails that trial, whose
    process on this host has ended, and trains the study's three trials itself; search-best then answers."""
    root = tmp_path / "resnet"
    url = f"sqlite:///{tmp_path}/resnet.db" if storage == "sqlite" else f"journal:{tmp_path}/resnet.journal"
    kill_when_exists(search_args(stage, root, url, worker=1), root / "trial0" / "last.pt")
    [name] = [s.study_name for s in optuna.get_all_study_summaries(studies.open_storage(url))]
    assert [t.state for t in studies.load(url, name).trials] == [optuna.trial.TrialState.RUNNING]
    assert cli.main(search_args(stage, root, url, worker=0)) == 0
    study = study_of(root)
    assert [t.state for t in study.trials][0] == optuna.trial.TrialState.FAIL
    assert sum(t.state in FINISHED for t in study.trials) == SEARCH["trials"]
    assert read_json(root / "worker0.json")["trials"] == [1, 2, 3]
    assert cli.main(["search-best", "--workers", str(root / "worker0.json"), "--out", str(root / "best.json")]) == 0


def test_two_workers_share_one_study(stage: Path, tmp_path: Path) -> None:
    """Two worker processes on one journal-file study: the planned trials, each once, both workers busy."""
    root, storage = tmp_path / "resnet", f"journal:{tmp_path}/resnet.journal"
    search = {**SEARCH, "trials": 6}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ferflow.cli", *search_args(stage, root, storage, worker, search)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in (0, 1)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    study = study_of(root)
    assert len(study.trials) == search["trials"] and {t.state for t in study.trials} <= FINISHED
    ran = [read_json(root / f"worker{w}.json")["trials"] for w in (0, 1)]
    assert sorted(ran[0] + ran[1]) == list(range(search["trials"])) and all(ran)
    assert {t.user_attrs["worker"] for t in study.trials} == {0, 1}


def test_tiny_workflow_searches_and_trains_the_best_trial(tiny_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny preset's search: its study holds the planned trials, and every seed of the experiment `search`
    trained with the best trial's parameters; the report shows the search."""
    monkeypatch.chdir(tiny_run)  # the storage URL is relative to the workflow's folder
    planned = yaml.safe_load(Path("workflow/presets/tiny.yaml").read_text())["models"]["resnet"]["search"]
    best = read_json("results/tiny/search/resnet/best.json")
    study = studies.load(best["storage"], best["study"])
    assert len(study.trials) == planned["trials"] and {t.state for t in study.trials} <= FINISHED
    assert best["params"] == study.best_params and set(best["params"]) == set(planned["space"])
    for seed in (1, 2):
        settings = checkpoint.read(f"results/tiny/runs/resnet/search/seed{seed}/best.pt")["settings"]
        assert defining_settings(settings) == best["settings"]
        assert {k: settings[k] for k in best["params"]} == best["params"]
    report = Path("results/tiny/report/index.html").read_text()
    assert '<h2 id="search">Search</h2>' in report and f"Study {best['study']}" in report


def test_a_searched_experiment_becomes_the_final(tmp_path: Path) -> None:
    """With `finals: auto` and no other sweep experiment, select_final picks `search` and the final trains with
    the best trial's settings (the final's epochs)."""
    workdir = copy_workflow(tmp_path)
    tiny = yaml.safe_load((workdir / "workflow" / "presets" / "tiny.yaml").read_text())
    tiny["seeds"], tiny["finals"] = [1], "auto"
    tiny["models"]["resnet"]["select"] = []
    (workdir / "workflow" / "presets" / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    snakemake(workdir, "--", "results/tiny/runs/resnet/final/seed1/best.pt")
    selection = read_json(workdir / "results/tiny/runs/resnet/selection.json")
    best = read_json(workdir / "results/tiny/search/resnet/best.json")
    assert selection["experiment"] == "search"
    final = checkpoint.read(workdir / "results/tiny/runs/resnet/final/seed1/best.pt")["settings"]
    assert defining_settings(final) == {**best["settings"], "epochs": tiny["models"]["resnet"]["final"]["epochs"]}


def test_a_distilled_search_passes_its_teacher_to_every_trial(
    stage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Distillation in the base settings: each trial trains against the teacher given to the search, whose digest
    names the study (another teacher, another study); without the teacher the search stops in one line."""
    teachers = []
    for seed in (1, 2):
        out = tmp_path / f"teacher{seed}"
        train = ["train", "--model", "resnet", "--experiment", "final", "--data-dir", str(stage), "--out", str(out)]
        assert cli.main([*train, "--settings", json.dumps(BASE | {"epochs": 1}), "--seed", str(seed)]) == 0
        teachers.append(out / "best.pt")
    distil = BASE | {"distillation": {"teacher": "resnet/final", "temperature": 2.0, "weight": 0.5}}
    search = {"trials": 2, "epochs": 1, "space": {"lr": {"log": [1e-3, 1e-1]}}}

    def args(root: Path, *extra: str) -> list[str]:
        argv = search_args(stage, root, f"sqlite:///{tmp_path}/kd.db", search=search)
        argv[argv.index("--settings") + 1] = json.dumps(distil)
        return [*argv, *extra]

    names = []
    for k, teacher in enumerate(teachers):
        root = tmp_path / f"kd{k}"
        assert cli.main(args(root, "--teacher", str(teacher))) == 0
        study = study_of(root)
        assert len(study.trials) == 2 and {t.state for t in study.trials} == {optuna.trial.TrialState.COMPLETE}
        for trial in study.trials:
            run = checkpoint.read(root / f"trial{trial.number}" / "last.pt")
            assert run["fingerprint"]["teacher"] == file_digest(teacher)
        names.append(read_json(root / "worker0.json")["study"])
    assert names[0] != names[1]
    assert cli.main(args(tmp_path / "orphan")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--teacher" in err[0]
