"""ferflow train: outputs, checkpoints, kill-and-resume, determinism, early stopping, plateau, learning."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score

from datastage import synthetic_stage
from ferflow import checkpoint, cli, config, models, synthetic
from ferflow.classes import CLASS_NAMES
from ferflow.faces import to_model_input
from ferflow.storage import load_split, save_stage
from interrupt import kill_after_first_epoch
from training import train_args

# fp32 everywhere (amp false): the tests compare exact numbers, which bf16 autocast (amp auto on CPUs with
# native bf16) would change from one CPU kind to another
BASE = {"epochs": 3, "batch_size": 32, "max_train_batches": 2, "threads": 2, "amp": False}
EXPECTED_COLUMNS = [
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_macro_f1",
    "lr",
    "epoch_seconds",
    "val_dead_units",
] + [f"val_{m}_{c}" for c in CLASS_NAMES for m in ("precision", "recall", "f1")]


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small grayscale model-input stage from the synthetic faces."""
    return synthetic_stage(tmp_path_factory.mktemp("stage"))


def resnet_args(stage: Path, out: Path, settings: dict[str, Any], seed: int = 0) -> list[str]:
    return train_args(stage, out, settings, model="resnet", seed=seed)


def train(stage: Path, out: Path, settings: dict[str, Any], seed: int = 0) -> list[dict[str, str]]:
    assert cli.main(resnet_args(stage, out, settings, seed)) == 0
    return read_history(out)


def read_history(out: Path) -> list[dict[str, str]]:
    with open(out / "history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def without_time(history: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in history]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def val_loss_and_f1(model: torch.nn.Module, stage: Path) -> tuple[float, float]:
    val = load_split(stage / "val.npz")
    with torch.no_grad():
        logits = model(to_model_input(val.images, 1))
    loss = float(F.cross_entropy(logits, torch.from_numpy(val.labels)))
    f1 = f1_score(
        val.labels, logits.argmax(1).numpy(), labels=range(len(CLASS_NAMES)), average="macro", zero_division=0
    )
    return loss, float(f1)


@pytest.fixture(scope="module")
def reference(stage: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted three-epoch run."""
    out = tmp_path_factory.mktemp("reference")
    train(stage, out, BASE)
    return out


def test_outputs_history_and_best_checkpoint(reference: Path, stage: Path) -> None:
    history = read_history(reference)
    assert list(history[0]) == EXPECTED_COLUMNS
    assert [int(r["epoch"]) for r in history] == [1, 2, 3]
    for row in history:
        assert 0 <= float(row["train_acc"]) <= 1 and 0 <= float(row["val_acc"]) <= 1
        assert float(row["lr"]) == 1e-3 and float(row["epoch_seconds"]) > 0
    model, ckpt = checkpoint.load_model(reference / "best.pt")  # torch.load(weights_only=True) inside
    f1s = [float(r["val_macro_f1"]) for r in history]
    assert ckpt["epoch"] == 1 + int(np.argmax(f1s)) and ckpt["val_macro_f1"] == max(f1s)
    assert (
        ckpt["experiment"] == "exp" and ckpt["settings"]["batch_size"] == 32 and ckpt["settings"]["optimizer"] == "adam"
    )
    assert ckpt["arch"] == "resnet" and ckpt["arch_kwargs"] == {"in_channels": 1, "num_classes": 7, "dropout": 0.0}
    assert ckpt["classes"] == list(CLASS_NAMES) and ckpt["normalization"] == {"mean": 0.5, "std": 0.5}
    # the checkpoint alone reproduces the recorded validation score and dead-unit fraction
    assert val_loss_and_f1(model, stage)[1] == pytest.approx(ckpt["val_macro_f1"], abs=1e-9)
    with torch.no_grad():
        features = model.features(to_model_input(load_split(stage / "val.npz").images, 1))
    dead = float((features <= 0).all(dim=0).float().mean())
    assert float(history[ckpt["epoch"] - 1]["val_dead_units"]) == pytest.approx(dead, abs=1e-9)
    assert not list(reference.glob(".*.tmp"))


def test_killed_run_resumes_to_the_uninterrupted_result(reference: Path, stage: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    kill_after_first_epoch(resnet_args(stage, out, BASE), out)
    assert not (out / "history.csv").exists() and not (out / "best.pt").exists()  # killed before the end
    killed_at = checkpoint.read(out / "last.pt")["epoch"]
    assert 1 <= killed_at < BASE["epochs"]

    history = train(stage, out, BASE)  # the restarted job
    assert without_time(history) == without_time(read_history(reference))
    assert_same_weights(checkpoint.read(out / "best.pt")["model"], checkpoint.read(reference / "best.pt")["model"])
    assert_same_weights(checkpoint.read(out / "last.pt")["model"], checkpoint.read(reference / "last.pt")["model"])


def test_identical_runs_match_and_a_stale_last_pt_is_not_resumed(stage: Path, tmp_path: Path) -> None:
    one = {**BASE, "epochs": 1}
    first = train(stage, tmp_path / "a", one, seed=0)
    again = train(stage, tmp_path / "b", one, seed=0)
    assert without_time(first) == without_time(again)
    assert_same_weights(
        checkpoint.read(tmp_path / "a" / "best.pt")["model"], checkpoint.read(tmp_path / "b" / "best.pt")["model"]
    )
    # another seed in the same run directory: last.pt of seed 0 must not be taken as finished work
    other = train(stage, tmp_path / "a", one, seed=1)
    assert len(other) == 1 and without_time(other) != without_time(first)
    assert checkpoint.read(tmp_path / "a" / "last.pt")["fingerprint"]["seed"] == 1


def test_a_finished_last_pt_is_retrained_not_reused(
    stage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job run again over a finished run (--forcerun, changed code) trains from scratch."""
    one = {**BASE, "epochs": 1}
    first = train(stage, tmp_path / "run", one)
    capsys.readouterr()
    again = train(stage, tmp_path / "run", one)
    log = capsys.readouterr().out
    assert "holds a finished run (epoch 1); training from scratch" in log and "resuming" not in log
    assert "epoch 1/1  train loss" in log  # the epoch was trained again, not read back
    assert again[0]["epoch_seconds"] != first[0]["epoch_seconds"]
    assert without_time(again) == without_time(first)  # the same seed in fp32: the same run, retrained


def test_early_stopping_restores_best_weights_and_plateau_lowers_lr(
    stage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # validation images are training images with shifted labels: learning the training labels raises the val loss
    train_split = load_split(stage / "train.npz")
    val = train_split.subset(np.arange(64))
    val.labels = (val.labels + 1) % len(CLASS_NAMES)
    data, out = tmp_path / "data", tmp_path / "run"
    save_stage(data, {"train": train_split, "val": val, "test": val})
    settings = {**BASE, "epochs": 8, "early_stopping_patience": 2, "plateau": {"factor": 0.5, "patience": 0}}
    history = train(data, out, settings)
    losses = [float(r["val_loss"]) for r in history]
    lrs = [float(r["lr"]) for r in history]
    best = int(np.argmin(losses))
    assert len(history) < 8, "early stopping never triggered"
    assert len(history) == best + 1 + 2  # stopped after two epochs without a lower val loss
    # ReduceLROnPlateau (patience 0): the lr halves after every epoch that did not improve the val loss
    record = float("inf")
    for epoch, loss in enumerate(losses[:-1]):
        improved = loss < record * (1 - 1e-4)
        record = min(record, loss) if improved else record
        assert lrs[epoch + 1] == pytest.approx(lrs[epoch] * (1 if improved else 0.5))
    last = checkpoint.read(out / "last.pt")
    assert last["optimizer"]["param_groups"][0]["lr"] == pytest.approx(lrs[-1] * 0.5)  # the last epoch did not improve
    # the weights left at the end are those of the lowest val loss, not of the last epoch
    model, _ = checkpoint.load_model(out / "last.pt")
    loss, _ = val_loss_and_f1(model, data)
    assert loss == pytest.approx(losses[best], rel=1e-5)
    assert abs(losses[-1] - losses[best]) > 1e-3
    assert last["early_stopping"]["stopped"] and last["early_stopping"]["epoch"] == best + 1
    # an early-stopped last.pt is a finished run too (fewer epochs than planned): a rerun retrains
    capsys.readouterr()
    again = train(data, out, settings)
    assert "training from scratch" in capsys.readouterr().out
    assert without_time(again) == without_time(history)


def test_training_learns_the_synthetic_faces(tmp_path: Path) -> None:
    splits = synthetic.generate(n_train=600, n_test=150, seed=3)
    save_stage(tmp_path / "data", {"train": splits["train"], "val": splits["test"], "test": splits["test"]})
    settings = {
        "epochs": 3,
        "batch_size": 16,
        "threads": 2,
        "augmentation": {"rotation": 0, "shear": 0, "translate": 0},
    }
    history = train(tmp_path / "data", tmp_path / "run", settings)
    assert max(float(r["val_macro_f1"]) for r in history) > 0.4  # chance is about 1/7


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"settings": json.dumps({"epochs": 1, "learning_rate": 1})}, "unknown training setting"),
        ({"settings": "{epochs: 1}"}, "--settings: not valid JSON"),
        ({"model": "resnet50"}, "unknown architecture"),
        ({"data": "missing"}, "split file not found"),
        ({"model": "vgg16", "options": '{"pretrained": true}'}, "vgg16-397923af.pth"),
    ],
)
def test_bad_input_fails_with_one_line_and_no_outputs(
    stage: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str],
    message: str,
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no cached ImageNet weights there
    args = train_args(
        tmp_path / change["data"] if "data" in change else stage,
        tmp_path / "run",
        BASE,
        model=change.get("model", "resnet"),
    )
    if "settings" in change:
        args[args.index("--settings") + 1] = change["settings"]
    if "options" in change:
        args += ["--model-options", change["options"]]
    assert cli.main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ferflow train: error:") and message in err and "\n" not in err
    assert not (tmp_path / "run" / "history.csv").exists() and not (tmp_path / "run" / "best.pt").exists()


@pytest.mark.parametrize(
    "native, amp, expected",
    [
        (True, "auto", torch.bfloat16),
        (False, "auto", None),
        (True, False, None),
        (False, True, torch.bfloat16),
    ],
)
def test_cpu_autocast_only_where_bf16_is_native_unless_forced(
    monkeypatch: pytest.MonkeyPatch, native: bool, amp: Any, expected: torch.dtype | None
) -> None:
    from ferflow.train import engine as train_module

    monkeypatch.setattr(train_module, "cpu_has_native_bf16", lambda: native)
    autocast, dtype = train_module.autocast_for(torch.device("cpu"), amp)
    assert dtype == expected
    with autocast():
        out = torch.nn.Linear(4, 2)(torch.ones(1, 4))
    assert out.dtype == (expected or torch.float32)


@pytest.mark.parametrize(
    "native, amp, expected",
    [
        (True, "auto", torch.bfloat16),
        (False, "auto", torch.float16),  # V100, T4: bf16 only emulated
        (False, True, torch.float16),
        (True, False, None),
    ],
)
def test_cuda_autocast_uses_bf16_only_where_the_gpu_computes_it_natively(
    monkeypatch: pytest.MonkeyPatch, native: bool, amp: Any, expected: torch.dtype | None
) -> None:
    from ferflow.train import engine as train_module

    # torch's default counts emulation: every CUDA GPU "supports" bf16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: native or including_emulation)
    assert train_module.autocast_for(torch.device("cuda"), amp)[1] == expected


def test_an_fp16_run_resumes_a_last_pt_without_scaler_state(
    monkeypatch: pytest.MonkeyPatch, stage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run started in fp32 (CPU) and continued under fp16 with the GradScaler, as when a job moves to a GPU
    without native bf16: the empty scaler state of last.pt is not loaded, the scaler starts afresh."""
    from ferflow.train import engine as train_module

    out = tmp_path / "run"
    settings = {**BASE, "epochs": 2}
    kill_after_first_epoch(resnet_args(stage, out, settings), out)
    assert checkpoint.read(out / "last.pt")["scaler"] == {}  # fp32: a disabled scaler saves nothing
    # fp16 autocast on this CPU stands in for the GPU (same settings, so last.pt is resumed)
    monkeypatch.setattr(
        train_module,
        "autocast_for",
        lambda device, amp: (lambda: torch.autocast("cpu", dtype=torch.float16), torch.float16),
    )
    capsys.readouterr()
    assert cli.main([*resnet_args(stage, out, settings), "--allow-precision-change"]) == 0  # fp32 then fp16
    history = read_history(out)
    assert "resuming from" in capsys.readouterr().out
    assert [int(row["epoch"]) for row in history] == [1, 2]
    assert checkpoint.read(out / "last.pt")["scaler"]["scale"] > 0  # the fp16 scaler ran and saved its state


def test_train_without_seed_takes_the_configs_first_seed(stage: Path, tmp_path: Path) -> None:
    args = train_args(stage, tmp_path / "run", {**BASE, "epochs": 1}, model="resnet")
    seed = args.index("--seed")
    assert cli.main(args[:seed] + args[seed + 2 :]) == 0
    assert checkpoint.read(tmp_path / "run" / "best.pt")["seed"] == config.default("seeds")[0] != 42


def test_bf16_training_on_cpu_runs_and_records_its_precision(
    stage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = train(stage, tmp_path / "bf16", {**BASE, "epochs": 1, "amp": True})
    assert "amp torch.bfloat16" in capsys.readouterr().out
    assert np.isfinite(float(history[0]["train_loss"])) and np.isfinite(float(history[0]["val_loss"]))


def test_bench_times_both_loops_and_prints_their_ratio(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    synthetic.write_fer_folders(tmp_path / "fer", synthetic.generate(n_train=200, n_test=14, seed=2))
    assert (
        cli.main(
            [
                "bench",
                "--model",
                "resnet",
                "--data",
                str(tmp_path / "fer"),
                "--batches",
                "2",
                "--rounds",
                "2",
                "--warmup",
                "1",
                "--amp",
                "false",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "ferflow loop: fp32" in out and "reference loop: fp32" in out
    rounds = [line for line in out.splitlines() if line.startswith("round ")]
    assert len(rounds) == 2
    ratio = float(out.split("ratio: ")[1].split("x")[0])
    assert ratio > 0


def test_a_collapsing_run_warns_of_dead_units(stage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = train(stage, tmp_path / "collapse", {**BASE, "epochs": 1, "lr": 1.0, "max_train_batches": 5})
    out = capsys.readouterr().out
    assert float(history[0]["val_dead_units"]) >= 0.9
    assert "warning:" in out and "embedding units are dead" in out
    healthy = train(stage, tmp_path / "healthy", {**BASE, "epochs": 1})
    assert float(healthy[0]["val_dead_units"]) < 0.9 and "embedding units are dead" not in capsys.readouterr().out


def test_dead_units_are_those_zero_on_every_image(stage: Path) -> None:
    from ferflow.train.engine import DeviceData, make_engine
    from ferflow.train.settings import resolve_settings

    torch.manual_seed(0)
    engine, _ = make_engine(models.build("resnet", in_channels=1), resolve_settings({}), torch.device("cpu"))
    data = DeviceData.of(load_split(stage / "val.npz"), torch.device("cpu"), 1)
    bias = engine.model.embedding[1].bias
    with torch.no_grad():
        bias[:] = 1e6  # every unit fires on every image
    assert engine.predict(data)[2] == 0.0
    with torch.no_grad():
        bias[:16] = -1e6  # a quarter of the 64 units can never fire
    assert engine.predict(data)[2] == 0.25
