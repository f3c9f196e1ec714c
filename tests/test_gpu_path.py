"""The CUDA path, checked on the CPU with stand-ins: a pruned trial gives its GPU slot back without the garbage
collector; a training step moves nothing between host and device and reads nothing back; bench syncs once per
timing; the compile fallback covers the backward and only the compiler's errors; the precision a run computes in
is part of its fingerprint (tests/test_cuda_smoke.py runs the real thing on a GPU)."""

from __future__ import annotations

import argparse
import gc
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch
from torch.overrides import TorchFunctionMode

from datastage import synthetic_stage
from ferflow import checkpoint, cli, models
from ferflow.device import GpuSlot, claim_gpu_slot, try_lock
from ferflow.train import bench, engine, trainer
from ferflow.train.settings import resolve_settings
from training import train_args

BASE = {"epochs": 2, "batch_size": 32, "max_train_batches": 2, "threads": 2, "amp": False}


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_stage(tmp_path_factory.mktemp("stage"))


def test_a_pruned_trial_gives_its_gpu_slot_back_without_the_garbage_collector(
    stage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every trial is pruned after its first epoch, on a machine of two (stand-in) GPUs: each trial claims a real
    slot lock, the first GPU's, which the pruned trial before it has given back, with the cyclic GC off (Optuna
    keeps the TrialPruned exception, and with it the trainer's frame)."""
    slots = tmp_path / "slots"
    claimed: list[int] = []

    def claim(timeout: float | None = None) -> tuple[torch.device, GpuSlot, str]:
        slot = claim_gpu_slot(["gpu-a", "gpu-b"], directory=slots, timeout=0)  # both held: fail at once
        claimed.append(slot.index)
        return torch.device("cpu"), slot, f"GPU slot {slot.path}"  # trains on the CPU, holding the slot

    monkeypatch.setattr(trainer, "select_device", lambda preference: torch.device("cuda"))
    monkeypatch.setattr(trainer, "claim_cuda_device", claim)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: True)
    search = {"trials": 3, "epochs": 2, "space": {"lr": {"log": [1e-4, 1e-2]}}}
    argv = ["search", "--model", "resnet", "--data-dir", str(stage), "--trials-dir", str(tmp_path / "trials")]
    argv += ["--storage", f"sqlite:///{tmp_path}/s.db", "--settings", json.dumps(BASE), "--search", json.dumps(search)]
    gc.disable()
    try:
        assert cli.main([*argv, "--out", str(tmp_path / "worker0.json")]) == 0
        assert claimed == [0, 0, 0]
        free = try_lock(0, slots / "gpu-gpu-a.lock")
        assert free is not None  # nothing holds it after the search
        free.release()
    finally:
        gc.enable()
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{tmp_path}/s.db")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * 3


class HostDeviceTraffic(TorchFunctionMode):
    """Counts the tensor calls that, on a GPU, move data between host and device or read a value back (a sync)."""

    CALLS = {"to", "cpu", "cuda", "item", "tolist", "__bool__", "__int__", "__float__", "__index__"}

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if getattr(func, "__name__", "") in self.CALLS:
            self.calls[func.__name__] += 1
        return func(*args, **(kwargs or {}))


def test_a_training_step_moves_and_reads_nothing_between_host_and_device() -> None:
    """With an EMA of the weights and balanced class weights (SGD: Adam keeps its step counts on the host, where
    reading them is no sync): AveragedModel's update count and the class weights stay on the training device."""
    settings = resolve_settings({"ema": 0.9, "class_weights": "balanced", "optimizer": "sgd", "amp": False})
    labels = np.arange(64) % 7
    torch.manual_seed(0)
    trained, _ = engine.make_engine(models.build("resnet", in_channels=1), settings, torch.device("cpu"), 4, labels)
    x, y = torch.randn(8, 1, 48, 48), torch.from_numpy(labels[:8])
    trained.step(x, y)  # the first update copies the weights into the average
    with HostDeviceTraffic() as traffic:
        for _ in range(3):
            trained.step(x, y)
    assert not traffic.calls, traffic.calls
    assert trained.ema is not None and trained.ema.updates == int(trained.ema.n_averaged) == 4


def test_a_resumed_average_goes_on_from_its_update_count() -> None:
    """The EMA of a resumed run averages from its first step on (the count comes back with its state), where a
    fresh one copies the weights."""
    settings = resolve_settings({"ema": 0.5, "amp": False, "dropout": 0.0})
    torch.manual_seed(0)
    first, _ = engine.make_engine(models.build("resnet", in_channels=1), settings, torch.device("cpu"))
    x, y = torch.randn(8, 1, 48, 48), torch.arange(8) % 7
    first.step(x, y)
    resumed, _ = engine.make_engine(models.build("resnet", in_channels=1), settings, torch.device("cpu"))
    assert resumed.ema is not None and first.ema is not None
    resumed.ema.load_state_dict(first.ema.state_dict())
    assert resumed.ema.updates == 1
    before = resumed.ema.module.classifier[1].weight.detach().clone()
    resumed.step(x, y)
    after, model = resumed.ema.module.classifier[1].weight.detach(), resumed.model.classifier[1].weight.detach()
    torch.testing.assert_close(after, 0.5 * before + 0.5 * model)


def test_bench_syncs_once_at_each_end_of_a_timing_not_every_batch() -> None:
    syncs: list[int] = []
    steps: list[int] = []
    batches = [(torch.zeros(4, 1), torch.zeros(4))] * 10
    rate = bench.timed(batches, lambda x, y: steps.append(len(steps)), count=6, warmup=2, sync=lambda: syncs.append(1))
    assert rate > 0 and len(steps) == 8 and len(syncs) == 2  # before starting the clock, before reading it


class CompilerFailsInBackward(torch.autograd.Function):
    """The identity, whose backward raises what Inductor raises when it cannot compile a backward graph."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        from torch._inductor.exc import InductorError

        raise InductorError(RuntimeError("no C++ compiler for the backward"), None)


def engines_with(monkeypatch: pytest.MonkeyPatch, compiled: Any) -> tuple[engine.Engine, engine.Engine]:
    """Two engines from the same initial weights: one eager, one whose ``torch.compile`` gives ``compiled(model)``
    (dropout on: the warm-up batch must not change the random state either)."""
    monkeypatch.setattr(torch, "compile", compiled)
    built = []
    for compile_on in (False, True):
        torch.manual_seed(0)
        settings = resolve_settings({"amp": False, "compile": compile_on, "dropout": 0.3})
        model = models.build("resnet", in_channels=1, dropout=0.3)
        built.append(engine.make_engine(model, settings, torch.device("cpu"))[0])
    return built[0], built[1]


def test_a_compiler_failure_in_the_backward_falls_back_to_eager_training_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    eager, compiled = engines_with(monkeypatch, lambda model: lambda x: CompilerFailsInBackward.apply(model(x)))
    x, y = torch.randn(8, 1, 48, 48), torch.arange(8) % 7
    for trained in (eager, compiled):
        torch.manual_seed(1)
        for _ in range(2):
            trained.step(x, y)
    out = capsys.readouterr().out
    assert out.count("warning: torch.compile failed, training eagerly") == 1 and compiled.compiled is None, out
    weights = [trained.model.state_dict().values() for trained in (eager, compiled)]
    assert all(torch.equal(a, b) for a, b in zip(*weights))


def test_out_of_memory_in_a_compiled_model_is_no_compile_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def out_of_memory(x: torch.Tensor) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    _, compiled = engines_with(monkeypatch, lambda model: out_of_memory)
    with pytest.raises(torch.OutOfMemoryError):
        compiled.step(torch.randn(8, 1, 48, 48), torch.arange(8) % 7)
    assert "torch.compile failed" not in capsys.readouterr().out


class Interrupted(Exception):
    """Stands in for a job killed after its first epoch."""


def interrupt(row: dict[str, float]) -> None:
    raise Interrupted


def test_a_resume_that_would_change_the_precision_is_refused_unless_allowed(
    stage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`amp: auto` trains in bf16 on a CPU with native bf16 and in fp32 elsewhere: the same settings, two
    precisions. A run begun on one kind of CPU and resumed on the other stops in one line, unless asked."""
    out = tmp_path / "run"
    argv = train_args(stage, out, {**BASE, "amp": "auto"}, model="resnet")
    parser = argparse.ArgumentParser()
    trainer.add_arguments(parser)
    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(Interrupted):
        trainer.run(parser.parse_args(argv[1:]), on_epoch=interrupt)
    assert checkpoint.read(out / "last.pt")["fingerprint"]["precision"] == "fp32"
    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: True)
    capsys.readouterr()
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fp32" in err[0] and "bf16" in err[0] and "--allow-precision-change" in err[0], err
    assert not (out / "best.pt").exists()
    assert cli.main([*argv, "--allow-precision-change"]) == 0
    assert "resuming from" in capsys.readouterr().out
    assert checkpoint.read(out / "best.pt")["precision"] == "bf16"
