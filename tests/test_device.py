"""Device selection and GPU slots, simulated without GPUs: separate processes claim distinct slots,
a busy machine waits, a killed job's slot frees up, locks follow the GPU's UUID, two users share the lock
folder, and a job that Slurm gave its GPU claims no slot."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import pytest
import torch

from ferflow.device import SLURM_GPU_IDS, claim_cuda_device, claim_gpu_slot, scheduler_assignment, select_device
from ferflow.errors import FerflowError

HOLDER = """
import sys, time
from pathlib import Path
from ferflow.device import claim_gpu_slot
slot = claim_gpu_slot(sys.argv[1].split(","), Path(sys.argv[2]), timeout=float(sys.argv[3]), poll=0.05)
print(slot.index, flush=True)
time.sleep(float(sys.argv[4]))
"""


def holder(ids: list[str], lock_dir: Path, timeout: float = 30, hold: float = 60) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, ",".join(ids), str(lock_dir), str(timeout), str(hold)],
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


TWO_GPUS = ["GPU-aaaa", "GPU-bbbb"]


def test_processes_claim_distinct_slots_and_a_killed_one_frees_its_slot(tmp_path: Path) -> None:
    first = holder(TWO_GPUS, tmp_path)
    try:
        assert claimed(first) == 0
        second = holder(TWO_GPUS, tmp_path)
        try:
            assert claimed(second) == 1
            # both slots busy: a third job cannot get one (short timeout instead of waiting forever)
            with pytest.raises(FerflowError, match="2 GPU slots .* busy"):
                claim_gpu_slot(TWO_GPUS, tmp_path, timeout=0.2, poll=0.05)
            waiting = holder(TWO_GPUS, tmp_path, timeout=30)  # this one waits for a slot
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
    slot = claim_gpu_slot(TWO_GPUS, tmp_path, timeout=0)
    assert slot.index == 0
    assert claim_gpu_slot(TWO_GPUS, tmp_path, timeout=0).index == 1  # same process, second handle: flock per open file
    slot.release()
    assert claim_gpu_slot(TWO_GPUS[:1], tmp_path, timeout=0).index == 0


def test_a_dropped_slot_is_free_again(tmp_path: Path) -> None:
    """A search worker trains trial after trial in one process: each trial's slot frees up when it ends."""
    for _ in range(2):
        assert claim_gpu_slot(TWO_GPUS[:1], tmp_path, timeout=0).index == 0  # dropped at once


def fake_gpus(monkeypatch: pytest.MonkeyPatch, uuids: list[str]) -> None:
    """This process sees CUDA devices with these UUIDs (torch.cuda's device count and properties)."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(uuids))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: types.SimpleNamespace(uuid=uuids[i]))


def test_lock_files_follow_the_gpu_uuid_not_cuda_visible_devices(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two jobs that each see their own GPU as CUDA device 0 lock different files and train at once."""
    for name in ("SLURM_JOB_ID", *SLURM_GPU_IDS, "SLURM_GPUS_ON_NODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FERFLOW_GPU_LOCK_DIR", str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    fake_gpus(monkeypatch, ["GPU-1111"])
    device, first, placement = claim_cuda_device(timeout=0)
    assert (device, first.path.name) == (torch.device("cuda", 0), "gpu-GPU-1111.lock")
    assert first.path.read_text().strip() == str(os.getpid())
    assert placement == f"GPU slot {first.path}"
    fake_gpus(monkeypatch, ["GPU-2222"])  # another job, another physical GPU, also CUDA device 0
    device, second, _ = claim_cuda_device(timeout=0)
    assert (device, second.path.name) == (torch.device("cuda", 0), "gpu-GPU-2222.lock")
    with pytest.raises(FerflowError, match="1 GPU slots .* busy"):  # the same GPU again: busy
        claim_cuda_device(timeout=0)


def test_a_gpu_given_by_slurm_claims_no_slot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FERFLOW_GPU_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_STEP_GPUS", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    fake_gpus(monkeypatch, ["GPU-1111"])
    assigned = "Slurm job 42 was given GPU 1, CUDA_VISIBLE_DEVICES=0"
    assert scheduler_assignment() == assigned
    assert claim_cuda_device(timeout=0) == (torch.device("cuda", 0), None, f"{assigned}: no GPU slot claimed")
    assert not (tmp_path / "locks").exists()
    # several GPUs in one allocation (snakemake run inside it): the jobs share them, so they claim slots
    fake_gpus(monkeypatch, ["GPU-1111", "GPU-2222"])
    monkeypatch.setenv("SLURM_STEP_GPUS", "0,1")
    _, slot, placement = claim_cuda_device(timeout=0)
    assert (
        slot is not None
        and slot.path.parent == tmp_path / "locks"
        and placement.endswith(f"({scheduler_assignment()})")
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SLURM_JOB_ID": "7", "SLURM_JOB_GPUS": "0"}, "Slurm job 7 was given GPU 0, CUDA_VISIBLE_DEVICES=unset"),
        (
            {"SLURM_JOB_ID": "7", "SLURM_GPUS_ON_NODE": "2"},
            "Slurm job 7 was given 2 GPU(s), CUDA_VISIBLE_DEVICES=unset",
        ),
        ({"SLURM_JOB_ID": "7", "SLURM_GPUS_ON_NODE": "0"}, None),  # a Slurm job without GPUs
        ({"SLURM_JOB_ID": "7"}, None),
        ({"SLURM_STEP_GPUS": "0", "CUDA_VISIBLE_DEVICES": "0"}, None),  # no job: a stray variable
        ({"CUDA_VISIBLE_DEVICES": "2,3"}, None),  # chosen by the user: the jobs share these GPUs
    ],
)
def test_scheduler_assignment(env: dict[str, str], expected: str | None) -> None:
    assert scheduler_assignment(env) == expected


def claim_as(user: str, lock_dir: Path, hold: float) -> tuple[int, str]:
    """Fork a process that becomes ``user`` (the interpreter may not be executable by that user, so no exec),
    claims one of TWO_GPUS and holds it for ``hold`` s: its pid and the slot index it claimed (or its error)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, hold, and leave without running the parent's cleanup
        try:
            entry = pwd.getpwnam(user)
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            slot = claim_gpu_slot(TWO_GPUS, lock_dir, timeout=0)  # held while referenced
            os.write(write, f"{slot.index}\n".encode())
            time.sleep(hold)
        except BaseException as err:  # noqa: BLE001 - any failure is the answer
            os.write(write, f"{type(err).__name__}: {err}\n".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        return pid, answer.readline().strip()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run processes as two other users")
def test_two_users_share_the_lock_folder() -> None:
    """One user's lock folder and files are usable by another (sticky world-writable, files rw for all)."""
    base = Path(tempfile.mkdtemp(prefix="ferflow-slots-"))
    try:
        base.chmod(0o1777)  # like /tmp
        slots = base / "ferflow-gpu-slots"
        first, index = claim_as("nobody", slots, hold=60)  # creates the folder and the first GPU's file
        try:
            assert index == "0"
            assert stat.S_IMODE(slots.stat().st_mode) == 0o1777
            assert stat.S_IMODE((slots / f"gpu-{TWO_GPUS[0]}.lock").stat().st_mode) == 0o666
            second, index = claim_as("daemon", slots, hold=0)  # first GPU busy: the second, in a new file
            os.waitpid(second, 0)
            assert index == "1"
        finally:
            os.kill(first, signal.SIGKILL)
            os.waitpid(first, 0)
        third, index = claim_as("daemon", slots, hold=0)  # the first user's file, now free
        os.waitpid(third, 0)
        assert index == "0"
    finally:
        shutil.rmtree(base)


def test_an_unusable_lock_folder_is_one_line(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "slots"
    not_a_folder.write_text("")
    with pytest.raises(
        FerflowError, match=r"GPU slot lock .*slots.*: Not a directory \(set FERFLOW_GPU_LOCK_DIR"
    ) as err:
        claim_gpu_slot(TWO_GPUS, not_a_folder, timeout=0)
    assert "\n" not in str(err.value)


def test_the_default_lock_folder_is_the_machine_s_not_a_users_tmpdir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two users whose $TMPDIR differ (per-user or per-job temporary folders) still share the slots."""
    from ferflow.device import MACHINE_LOCK_DIRS, lock_dir

    monkeypatch.delenv("FERFLOW_GPU_LOCK_DIR", raising=False)
    folders = set()
    for user in ("alice", "bob"):
        monkeypatch.setenv("TMPDIR", str(tmp_path / user))
        monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
        folders.add(lock_dir())
    (folder,) = folders
    assert folder.name == "ferflow-gpu-slots" and folder.parent in MACHINE_LOCK_DIRS


def test_lock_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ferflow.device import lock_dir

    monkeypatch.setenv("FERFLOW_GPU_LOCK_DIR", str(tmp_path / "locks"))
    assert lock_dir() == tmp_path / "locks"
    assert claim_gpu_slot(TWO_GPUS, timeout=0).path.parent == tmp_path / "locks"
