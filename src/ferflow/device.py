"""Device selection and GPU slots.

``snakemake --resources gpu=k`` runs at most k training jobs at once but does not tell a job which
GPU to use. Each training job therefore claims a *slot*: an exclusive ``fcntl.flock`` on one lock
file per visible GPU, named after the GPU's UUID (``gpu-<uuid>.lock`` in ``$FERFLOW_GPU_LOCK_DIR``,
default ``/run/lock/ferflow-gpu-slots``, else ``/tmp/ferflow-gpu-slots``: a sticky world-writable folder of the
machine, never ``$TMPDIR``, which is often per user or per job, so that every user of a machine shares it), and
trains on that GPU. The kernel releases the lock when the process
ends, however it ends (exit, exception, SIGKILL), so a dead job never keeps its GPU.

A job whose scheduler already gave it its GPU (a Slurm job with GPUs allocated that sees exactly one)
claims no slot: Slurm keeps its jobs apart, and each of them sees its GPU as device 0.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ferflow import config
from ferflow.errors import FerflowError

if TYPE_CHECKING:
    import torch

PREFERENCES: tuple[str, ...] = tuple(config.schema()["$defs"]["experiment"]["properties"]["device"]["enum"])
"""The devices a run may ask for (the schema's ``train.device`` choices)."""


GPU_PREFERENCES = ("auto", "cuda")
"""The devices under which a training job asks its scheduler for a GPU (``auto`` trains on one where there is one);
under the others (``cpu``, ``mps``) it asks for CPUs only."""


def mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def select_device(preference: str = "auto") -> torch.device:
    """``auto``: CUDA, else MPS, else CPU; an explicit device must be available."""
    import torch  # imported here so that claiming a GPU slot stays light

    if preference not in PREFERENCES:
        raise FerflowError(f"device {preference!r} is not one of {', '.join(PREFERENCES)}")
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    if preference == "cuda" and not torch.cuda.is_available():
        raise FerflowError("device 'cuda' requested but CUDA is not available")
    if preference == "mps" and not mps_available():
        raise FerflowError("device 'mps' requested but MPS is not available")
    return torch.device(preference)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX, as oneDNN sees it). Elsewhere
    CPU autocast emulates bf16 and trains about ten times slower than fp32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cuda_has_native_bf16() -> bool:
    """Whether the current CUDA GPU computes bfloat16 natively (compute capability 8.0, Ampere, or later).
    Older GPUs (V100, T4) only emulate it, which ``torch.cuda.is_bf16_supported()`` counts by default."""
    import torch

    return bool(torch.cuda.is_bf16_supported(including_emulation=False))


def cpu_kind() -> str:
    """This CPU as the figures name it: its model, the vector instructions PyTorch dispatches to, and whether it
    computes bf16 natively (``amp: auto`` then trains in bf16), e.g. ``AMD EPYC (AVX512, native bf16)``."""
    import platform

    import torch

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), model)
    except OSError:
        pass
    bf16 = "native bf16" if cpu_has_native_bf16() else "no native bf16"
    return f"{model} ({torch.backends.cpu.get_cpu_capability()}, {bf16})"


def hardware(device: torch.device) -> str:
    """What ``device`` is, as a run's checkpoint records it: the GPU's name, or the CPU's kind (:func:`cpu_kind`)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_kind() if device.type == "cpu" else device.type


SLURM_GPU_IDS = ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS")
"""The variables in which Slurm names the GPUs it gave a job step, or the job."""


def scheduler_assignment(env: Mapping[str, str] = os.environ) -> str | None:
    """How this job's scheduler assigned it GPUs, as a line for the log (e.g. ``Slurm job 42 was given GPU 1,
    CUDA_VISIBLE_DEVICES=0``); None when no scheduler did (a local run, or a Slurm job without GPUs)."""
    job = env.get("SLURM_JOB_ID")
    ids = next((env[name] for name in SLURM_GPU_IDS if env.get(name, "").strip()), None)
    count = env.get("SLURM_GPUS_ON_NODE", "").strip()
    if not job or not (ids or (count.isdigit() and int(count) > 0)):
        return None
    given = f"GPU {ids}" if ids else f"{count} GPU(s)"
    return f"Slurm job {job} was given {given}, CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', 'unset')}"


def gpu_uuids(count: int) -> list[str]:
    """The UUIDs of the first ``count`` visible CUDA devices: names that do not depend on CUDA_VISIBLE_DEVICES."""
    import torch

    return [str(torch.cuda.get_device_properties(index).uuid) for index in range(count)]


def claim_cuda_device(timeout: float | None = None) -> tuple[torch.device, GpuSlot | None, str]:
    """The CUDA device this job trains on, the slot that reserves it (None where the scheduler assigned the GPU)
    and how it was chosen, as a line for the log."""
    import torch

    count = torch.cuda.device_count()
    assigned = scheduler_assignment()
    if assigned and count == 1:
        return torch.device("cuda", 0), None, f"{assigned}: no GPU slot claimed"
    slot = claim_gpu_slot(gpu_uuids(count), timeout=timeout)
    return torch.device("cuda", slot.index), slot, f"GPU slot {slot.path}" + (f" ({assigned})" if assigned else "")


MACHINE_LOCK_DIRS = (Path("/run/lock"), Path("/tmp"))
"""The machine-wide sticky folders the slot folder goes in, the first that exists (``/run/lock``: FHS lock files)."""


def lock_dir() -> Path:
    """Where the GPU slot lock files live: ``$FERFLOW_GPU_LOCK_DIR``, else a folder every user of the machine sees."""
    if os.environ.get("FERFLOW_GPU_LOCK_DIR"):
        return Path(os.environ["FERFLOW_GPU_LOCK_DIR"])
    return next((d for d in MACHINE_LOCK_DIRS if d.is_dir()), MACHINE_LOCK_DIRS[-1]) / "ferflow-gpu-slots"


@dataclass
class GpuSlot:
    """A claimed GPU: ``index`` among the visible devices; held until ``release()``, until the slot is dropped
    (its file closes) or until the process exits."""

    index: int
    path: Path
    handle: IO[bytes]

    def release(self) -> None:
        if not self.handle.closed:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


def make_shared_dir(directory: Path) -> None:
    """Create ``directory`` as a folder every user can add files to, sticky like /tmp, unless it exists."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        directory.mkdir()
    except FileExistsError:
        return
    directory.chmod(0o1777)  # past the umask


def open_lock(path: Path) -> tuple[int, bool]:
    """A descriptor of the lock file ``path`` and whether it is writable; a new file is writable by every user.
    An existing file is opened without O_CREAT, which a sticky folder refuses on another user's file."""
    while True:
        try:
            return os.open(path, os.O_RDWR), True
        except FileNotFoundError:
            pass
        except PermissionError:  # another user's file that is not world-writable: flock needs no write access
            return os.open(path, os.O_RDONLY), False
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue  # another job created it meanwhile
        os.fchmod(fd, 0o666)  # past the umask
        return fd, True


def try_lock(index: int, path: Path) -> GpuSlot | None:
    """The slot of ``path`` if no other process holds it; records this process's id in the file."""
    fd, writable = open_lock(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if writable:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return GpuSlot(index, path, os.fdopen(fd, "r+b" if writable else "rb", buffering=0))


def claim_gpu_slot(
    ids: Sequence[str], directory: Path | None = None, timeout: float | None = None, poll: float = 1.0
) -> GpuSlot:
    """Lock the first free slot of the GPUs named ``ids`` (their UUIDs), waiting for one to free up (up to
    ``timeout`` s). A lock folder or file that cannot be used is a one-line FerflowError."""
    if not ids:
        raise FerflowError("no GPU to claim a slot for")
    directory = directory or lock_dir()
    start = time.monotonic()
    announced = False
    try:
        make_shared_dir(directory)
        while True:
            for index, gpu in enumerate(ids):
                slot = try_lock(index, directory / f"gpu-{gpu}.lock")
                if slot is not None:
                    return slot
            if timeout is not None and time.monotonic() - start >= timeout:
                raise FerflowError(f"all {len(ids)} GPU slots in {directory} stayed busy for {timeout:g} s")
            if not announced:
                print(
                    f"all {len(ids)} GPU slots in {directory} are busy; waiting for one to free up",
                    file=sys.stderr,
                    flush=True,
                )
                announced = True
            time.sleep(poll)
    except OSError as err:
        raise FerflowError(
            f"GPU slot lock {err.filename or directory}: {err.strerror or err} "
            "(set FERFLOW_GPU_LOCK_DIR to a folder every user can write)"
        ) from err
