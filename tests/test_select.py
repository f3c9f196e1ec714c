"""select-final (finals: auto), deploy-seed (a final's deployed seed) and the training rules' plan."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import pytest

from conftest import bin_path, copy_workflow
from fake_results import metrics as fake_metrics
from ferflow import cli
from ferflow.errors import FerflowError
from ferflow.storage import write_json
from ferflow.train.select import select


def write_history(path: Path, f1s: list[float], dead: float = 0.1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_macro_f1", "val_dead_units"])
        writer.writerows([i + 1, 1.0, 0.5, 1.0, 0.5, f1, dead] for i, f1 in enumerate(f1s))
    return path


def history(root: Path, experiment: str, seed: int, f1s: list[float], dead: float = 0.1) -> Path:
    return write_history(root / "runs" / "resnet" / experiment / f"seed{seed}" / "history.csv", f1s, dead)


def test_select_ranks_experiments_by_mean_val_macro_f1_over_seeds(tmp_path: Path) -> None:
    paths = [
        history(tmp_path, "a", 1, [0.30, 0.45, 0.40]),
        history(tmp_path, "a", 2, [0.41]),  # mean 0.43
        history(tmp_path, "b", 1, [0.20, 0.60, 0.10]),
        history(tmp_path, "b", 2, [0.20]),  # best seed, mean 0.40
        history(tmp_path, "c", 1, [0.43]),
        history(tmp_path, "c", 2, [0.43]),  # ties with a: the first listed wins
    ]
    settings = {e: {"lr": lr, "epochs": 15} for e, lr in (("a", 1e-3), ("b", 1e-2), ("c", 1e-4))}
    record = select("resnet", paths, settings, epochs=40)
    assert (record["experiment"], record["val_macro_f1"]) == ("a", pytest.approx(0.43))
    assert record["settings"] == {"lr": 1e-3, "epochs": 40}
    assert record["candidates"]["b"] == {"val_macro_f1": pytest.approx(0.40), "seeds": {"1": 0.60, "2": 0.20}}
    assert select("resnet", paths[2:4], settings, epochs=None)["settings"] == {"lr": 1e-2, "epochs": 15}


def test_select_final_cli_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = history(tmp_path, "a", 1, [0.3])
    out = tmp_path / "selection.json"
    args = [
        "select-final",
        "--model",
        "resnet",
        "--histories",
        str(a),
        "--settings",
        json.dumps({"a": {"lr": 0.1}}),
        "--epochs",
        "7",
        "--out",
        str(out),
    ]
    assert cli.main(args) == 0
    assert json.loads(out.read_text())["settings"] == {"lr": 0.1, "epochs": 7}
    empty = tmp_path / "runs" / "resnet" / "e" / "seed1" / "history.csv"
    empty.parent.mkdir(parents=True)
    empty.write_text("epoch,val_macro_f1\n")
    with pytest.raises(FerflowError, match="history lacks columns"):
        select("resnet", [empty], {"e": {}}, None)
    with pytest.raises(FerflowError, match="lacks experiment"):
        select("resnet", [a], {"b": {}}, None)
    with pytest.raises(FerflowError, match="not in a run folder"):
        select("resnet", [write_history(tmp_path / "loose.csv", [0.2])], {"a": {}}, None)
    bad = args[:]
    bad[bad.index("--histories") + 1] = str(tmp_path / "runs" / "resnet" / "a" / "seed9" / "history.csv")
    out.unlink()
    assert cli.main(bad) == 1
    assert "seed9/history.csv: history not found" in capsys.readouterr().err and not out.exists()


def final_seed(root: Path, seed: int, f1: float, *, dead: float = 0.1, one_class: bool = False) -> Path:
    """A final's seed folder: history, val_metrics (all "happy" when one_class) and a best.pt stand-in."""
    run = history(root, "final", seed, [f1 / 2, f1], dead).parent
    write_json(run / "val_metrics.json", fake_metrics(seed, "resnet", 1000, collapsed=one_class))
    (run / "best.pt").write_bytes(f"checkpoint of seed {seed}".encode())
    return run


def deploy(runs: list[Path], out: Path) -> tuple[int, dict]:
    code = cli.main(
        [
            "deploy-seed",
            "--runs",
            *map(str, runs),
            "--out",
            str(out / "best.pt"),
            "--record",
            str(out / "deployed.json"),
        ]
    )
    return code, json.loads((out / "deployed.json").read_text()) if code == 0 else {}


def test_deploy_seed_takes_the_best_val_macro_f1_among_seeds_that_did_not_collapse(tmp_path: Path) -> None:
    runs = [
        final_seed(tmp_path, 1, 0.40),
        final_seed(tmp_path, 2, 0.55, dead=0.92),  # best, but 92 % dead
        final_seed(tmp_path, 3, 0.50, one_class=True),
        final_seed(tmp_path, 4, 0.45),
    ]
    out = tmp_path / "runs" / "resnet" / "final"
    code, record = deploy(runs, out)
    assert code == 0 and record["seed"] == 4 and not record["all_collapsed"]
    assert (out / "best.pt").read_bytes() == b"checkpoint of seed 4"
    assert "2 of 4 seeds collapsed" in record["reason"]
    seeds = record["seeds"]
    assert [seeds[k]["collapsed"] for k in "1234"] == [False, True, True, False]
    assert "92% of embedding units dead" in seeds["2"]["collapse"]
    assert seeds["3"]["val_top_class"] == "happy" and seeds["3"]["val_top_share"] == 1.0
    assert seeds["2"]["val_macro_f1"] == 0.55 and seeds["2"]["best_epoch"] == 2
    assert not list(out.glob(".*.tmp"))


def test_deploy_seed_when_every_seed_collapsed_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = [final_seed(tmp_path, 1, 0.10, one_class=True), final_seed(tmp_path, 2, 0.12, dead=0.95)]
    code, record = deploy(runs, tmp_path / "out")
    assert code == 0 and record["seed"] == 2 and record["all_collapsed"]
    assert record["reason"].startswith("all 2 seeds collapsed")
    assert "warning: every seed of resnet/final collapsed" in capsys.readouterr().err


def test_deploy_seed_refuses_mixed_experiments_without_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = history(tmp_path, "a", 1, [0.3]).parent
    write_json(other / "val_metrics.json", fake_metrics(1, "resnet", 1000))
    code, _ = deploy([final_seed(tmp_path, 1, 0.4), other], tmp_path / "out")
    assert code == 1 and "--runs mix experiments" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def dry_run(workdir: Path, *args: str) -> str:
    proc = subprocess.run(
        [bin_path("snakemake"), "-n", "--quiet", "rules", *args], cwd=workdir, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def planned(text: str, rule: str) -> int:
    match = re.search(rf"^{rule}\s+(\d+)$", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def test_study_plans_every_experiment_once_per_seed(tmp_path: Path) -> None:
    """config.yaml (seeds [1, 2, 3]): 11 sweep experiments and 2 finals, 3 training jobs each."""
    workdir = copy_workflow(tmp_path)
    explicit = dry_run(workdir)
    assert planned(explicit, "train") == 3 * (11 + 2) and planned(explicit, "select_final") == 0
    assert planned(explicit, "deploy_seed") == 2
    auto = dry_run(workdir, "--config", "finals=auto")
    assert planned(auto, "train") == 39 and planned(auto, "select_final") == 2
    (workdir / "one_seed.yaml").write_text("seeds: [7]\n")
    one = dry_run(workdir, "--configfile", "one_seed.yaml")
    assert planned(one, "train") == 13 and planned(one, "evaluate_val") == 13
