"""select-final (finals: auto) and the training rules' plan."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import pytest

from ferflow import cli
from ferflow.errors import FerflowError
from ferflow.select import select

from conftest import bin_path, copy_workflow


def write_history(path: Path, f1s: list[float]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["epoch", "val_loss", "val_macro_f1"])
        writer.writerows([i + 1, 1.0, f1] for i, f1 in enumerate(f1s))
    return path


def test_select_picks_the_highest_val_macro_f1_over_all_epochs(tmp_path: Path) -> None:
    a = write_history(tmp_path / "a.csv", [0.30, 0.45, 0.40])
    b = write_history(tmp_path / "b.csv", [0.20, 0.50, 0.10])  # best peak, worst last epoch
    c = write_history(tmp_path / "c.csv", [0.50])  # ties with b: the first listed wins
    settings = {e: {"lr": lr, "epochs": 15} for e, lr in (("a", 1e-3), ("b", 1e-2), ("c", 1e-4))}
    record = select("resnet", [a, b, c], ["a", "b", "c"], settings, epochs=40)
    assert (record["experiment"], record["val_macro_f1"], record["epoch"]) == ("b", 0.50, 2)
    assert record["settings"] == {"lr": 1e-2, "epochs": 40}
    assert record["candidates"]["a"] == {"val_macro_f1": 0.45, "epoch": 2}
    assert select("resnet", [a, b], ["a", "b"], settings, epochs=None)["settings"]["epochs"] == 15


def test_select_final_cli_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_history(tmp_path / "a.csv", [0.3])
    out = tmp_path / "selection.json"
    args = ["select-final", "--model", "resnet", "--histories", str(a), "--experiments", "a",
            "--settings", json.dumps({"a": {"lr": 0.1}}), "--epochs", "7", "--out", str(out)]
    assert cli.main(args) == 0
    assert json.loads(out.read_text())["settings"] == {"lr": 0.1, "epochs": 7}
    (tmp_path / "empty.csv").write_text("epoch,val_macro_f1\n")
    with pytest.raises(FerflowError, match="empty.csv: no epochs"):
        select("resnet", [tmp_path / "empty.csv"], ["a"], {"a": {}}, None)
    with pytest.raises(FerflowError, match="lacks experiment"):
        select("resnet", [a], ["b"], {"a": {}}, None)
    bad = args[:]
    bad[bad.index("--histories") + 1] = str(tmp_path / "missing.csv")
    out.unlink()
    assert cli.main(bad) == 1
    assert "missing.csv: history not found" in capsys.readouterr().err and not out.exists()


def dry_run(workdir: Path, *args: str) -> str:
    proc = subprocess.run([bin_path("snakemake"), "-n", "--quiet", "rules", *args], cwd=workdir,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def planned(text: str, rule: str) -> int:
    match = re.search(rf"^{rule}\s+(\d+)$", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def test_study_plans_eleven_sweep_runs_and_two_finals(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path)
    explicit = dry_run(workdir)
    assert planned(explicit, "train") == 11 + 2 and planned(explicit, "select_final") == 0
    auto = dry_run(workdir, "--config", "finals=auto")
    assert planned(auto, "train") == 13 and planned(auto, "select_final") == 2
