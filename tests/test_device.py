"""Device selection and GPU slots, simulated without GPUs: separate processes claim distinct slots,
a busy machine waits, and a killed job's slot frees up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ferflow.device import claim_gpu_slot, select_device, visible_gpu_ids
from ferflow.errors import FerflowError

HOLDER = """
import sys, time
from pathlib import Path
from ferflow.device import claim_gpu_slot
slot = claim_gpu_slot(int(sys.argv[1]), Path(sys.argv[2]), timeout=float(sys.argv[3]), poll=0.05)
print(slot.index, flush=True)
time.sleep(float(sys.argv[4]))
"""


def holder(count: int, lock_dir: Path, timeout: float = 30, hold: float = 60) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(count), str(lock_dir), str(timeout), str(hold)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def claimed(proc: subprocess.Popen[str]) -> int:
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    return int(line)


def test_select_device_auto_and_explicit() -> None:
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert select_device("auto").type == expected
    assert select_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(FerflowError, match="CUDA is not available"):
            select_device("cuda")
    with pytest.raises(FerflowError, match="tpu"):
        select_device("tpu")


def test_processes_claim_distinct_slots_and_a_killed_one_frees_its_slot(tmp_path: Path) -> None:
    first = holder(2, tmp_path)
    try:
        assert claimed(first) == 0
        second = holder(2, tmp_path)
        try:
            assert claimed(second) == 1
            # both slots busy: a third job cannot get one (short timeout instead of waiting forever)
            with pytest.raises(FerflowError, match="2 GPU slots .* busy"):
                claim_gpu_slot(2, tmp_path, timeout=0.2, poll=0.05)
            waiting = holder(2, tmp_path, timeout=30)  # this one waits for a slot
            time.sleep(0.5)
            assert waiting.poll() is None
            os.kill(first.pid, signal.SIGKILL)  # a dead job's lock is released by the kernel
            first.wait()
            assert claimed(waiting) == 0
            waiting.kill()
            waiting.wait()
        finally:
            second.kill()
            second.wait()
    finally:
        first.kill()
        first.wait()
    # everything released: this process gets slot 0, and release() frees it for the next claim
    slot = claim_gpu_slot(2, tmp_path, timeout=0)
    assert slot.index == 0
    assert claim_gpu_slot(2, tmp_path, timeout=0).index == 1  # same process, second handle: flock is per open file
    slot.release()
    assert claim_gpu_slot(1, tmp_path, timeout=0).index == 0


def test_lock_files_follow_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert visible_gpu_ids(2) == ["3", "5"]
    slot = claim_gpu_slot(2, tmp_path, timeout=0)
    assert (slot.index, slot.path.name) == (0, "gpu-3.lock")
    assert slot.path.read_text().strip() == str(os.getpid())
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert visible_gpu_ids(2) == ["0", "1"]


def test_lock_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ferflow.device import lock_dir

    monkeypatch.setenv("FERFLOW_GPU_LOCK_DIR", str(tmp_path / "locks"))
    assert lock_dir() == tmp_path / "locks"
    assert claim_gpu_slot(1, timeout=0).path.parent == tmp_path / "locks"
