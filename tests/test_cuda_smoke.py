"""CUDA smoke test, the first thing to run on a CUDA machine: ``pytest -q tests/test_cuda_smoke.py`` (seconds;
benchmarks/gpu_study.sh runs it first). A tiny run trains one epoch on ``cuda`` under autocast, is interrupted
and resumes; a run begun on the CPU resumes on the GPU under fp16 with the GradScaler; an epoch's training steps
make no host-device sync. Skips where CUDA cannot train (ferflow.gpu_check), unless FERFLOW_REQUIRE_CUDA=1
(set by gpu_study.sh) turns the skip into a failure."""

from __future__ import annotations

import argparse
import csv
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ferflow import checkpoint, models, synthetic
from ferflow.gpu_check import cuda_problem
from ferflow.storage import load_split, save_stage
from ferflow.train import engine, trainer
from ferflow.train.settings import resolve_settings
from training import train_args


@pytest.fixture(autouse=True)
def usable_cuda() -> None:
    """Skip where CUDA cannot train; under FERFLOW_REQUIRE_CUDA=1 (the GPU script) fail instead."""
    problem = cuda_problem()
    if problem:
        if os.environ.get("FERFLOW_REQUIRE_CUDA") == "1":
            pytest.fail(f"FERFLOW_REQUIRE_CUDA=1 but {problem}")
        pytest.skip(problem)


TINY = {"epochs": 2, "batch_size": 32, "max_train_batches": 3, "threads": 2}


class Interrupted(Exception):
    """Stands in for a job killed after its first epoch (last.pt is written)."""


def stop_after_first_epoch(row: dict[str, float]) -> None:
    raise Interrupted


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    splits = synthetic.generate(n_train=128, n_test=64, seed=3)
    out = tmp_path_factory.mktemp("stage")
    test = splits["test"]
    save_stage(
        out, {"train": splits["train"], "val": test.subset(np.arange(32)), "test": test.subset(np.arange(32, 64))}
    )
    return out


def train(
    stage: Path, out: Path, settings: dict[str, Any], device: str, interrupt: bool = False, extra: tuple[str, ...] = ()
) -> None:
    """``ferflow train`` in this process; ``interrupt``: stop it after its first epoch."""
    parser = argparse.ArgumentParser()
    trainer.add_arguments(parser)
    argv = train_args(stage, out, settings, model="resnet", seed=1, extra=("--device", device, *extra))
    args = parser.parse_args(argv[1:])
    if interrupt:
        with pytest.raises(Interrupted):
            trainer.run(args, on_epoch=stop_after_first_epoch)
        assert checkpoint.read(out / "last.pt")["epoch"] == 1 and not (out / "best.pt").exists()
    else:
        assert trainer.run(args) == 0


def finite_history(out: Path) -> list[dict[str, str]]:
    with open(out / "history.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(math.isfinite(float(r[k])) for r in rows for k in ("train_loss", "val_loss")), rows
    return rows


def test_an_amp_epoch_on_cuda_resumes(
    stage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FERFLOW_GPU_LOCK_DIR", str(tmp_path / "slots"))
    out = tmp_path / "run"
    settings = {**TINY, "amp": True}
    train(stage, out, settings, "cuda", interrupt=True)
    train(stage, out, settings, "cuda")
    log = capsys.readouterr().out
    dtype = "torch.bfloat16" if torch.cuda.is_bf16_supported(including_emulation=False) else "torch.float16"
    assert "resuming from" in log and "device cuda:" in log and f"amp {dtype}" in log, log
    finite_history(out)
    model, _ = checkpoint.load_model(out / "best.pt")
    assert next(model.parameters()).device.type == "cpu"  # saved for any machine


def test_a_cpu_run_resumes_on_cuda_under_fp16(
    stage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The job moves from a CPU to a GPU without native bf16 (forced here): fp16 with the GradScaler, whose empty
    state in last.pt (saved by the CPU run) is not loaded."""
    monkeypatch.setenv("FERFLOW_GPU_LOCK_DIR", str(tmp_path / "slots"))
    out = tmp_path / "run"
    settings = {**TINY, "amp": "auto"}  # a training setting: the same on both devices, so last.pt is resumed
    train(stage, out, settings, "cpu", interrupt=True)  # fp32 or bf16: no scaler state
    assert checkpoint.read(out / "last.pt")["scaler"] == {}
    monkeypatch.setattr(engine, "cuda_has_native_bf16", lambda: False)
    train(stage, out, settings, "cuda", extra=("--allow-precision-change",))  # fp32 or bf16, then fp16
    log = capsys.readouterr().out
    assert "resuming from" in log and "device cuda:" in log and "amp torch.float16" in log, log
    assert checkpoint.read(out / "last.pt")["scaler"]["scale"] > 0
    finite_history(out)


def test_training_steps_make_no_host_device_sync(stage: Path) -> None:
    """One epoch's batches and steps (EMA, balanced class weights, bf16 autocast) under
    ``torch.cuda.set_sync_debug_mode("error")``: nothing waits for the GPU between steps. fp16 is left out: its
    GradScaler reads back whether a step overflowed, by design."""
    if not torch.cuda.is_bf16_supported(including_emulation=False):
        pytest.skip("no native bf16 on this GPU: fp16's GradScaler syncs at every step")
    device = torch.device("cuda", 0)
    split = load_split(stage / "train.npz")
    settings = resolve_settings({**TINY, "ema": 0.99, "class_weights": "balanced", "optimizer": "sgd", "amp": True})
    torch.manual_seed(0)
    trained, _ = engine.make_engine(models.build("resnet", in_channels=1), settings, device, 3, split.labels)
    data = engine.DeviceData.of(split, device, 1)
    warm_up = engine.EpochBatches(data, settings, engine.epoch_generator(1, 0), trained.channels_last)
    for x, targets, _, soft in warm_up:  # cuDNN's algorithm search (benchmark mode) may sync: not timed here
        trained.step(x, targets, soft)
    batches = engine.EpochBatches(data, settings, engine.epoch_generator(1, 1), trained.channels_last)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for x, targets, _, soft in batches:
            trained.step(x, targets, soft)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
