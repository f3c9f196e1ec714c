"""Device selection and GPU slots.

``snakemake --resources gpu=k`` runs at most k training jobs at once but does not tell a job which
GPU to use. Each training job therefore claims a *slot*: an exclusive ``fcntl.flock`` on one lock
file per visible GPU (``gpu-<id>.lock`` in ``$FERFLOW_GPU_LOCK_DIR``, default
``$TMPDIR/ferflow-gpu-slots``) and trains on that GPU. The kernel releases the lock when the process
ends, however it ends (exit, exception, SIGKILL), so a dead job never keeps its GPU.
"""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ferflow.errors import FerflowError

if TYPE_CHECKING:
    import torch

PREFERENCES = ("auto", "cpu", "cuda", "mps")


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


def lock_dir() -> Path:
    """Where the GPU slot lock files live."""
    return Path(os.environ.get("FERFLOW_GPU_LOCK_DIR") or Path(tempfile.gettempdir()) / "ferflow-gpu-slots")


def visible_gpu_ids(count: int) -> list[str]:
    """A stable name for each visible GPU: its CUDA_VISIBLE_DEVICES entry when set, else its index."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    return visible[:count] if len(visible) >= count else [str(i) for i in range(count)]


@dataclass
class GpuSlot:
    """A claimed GPU: ``index`` among the visible devices; held until ``release()`` or process exit."""

    index: int
    path: Path
    handle: IO[str]

    def release(self) -> None:
        if not self.handle.closed:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


def claim_gpu_slot(
    count: int, directory: Path | None = None, timeout: float | None = None, poll: float = 1.0
) -> GpuSlot:
    """Lock the first free of ``count`` GPU slots, waiting for one to free up (up to ``timeout`` s)."""
    if count < 1:
        raise FerflowError("no GPU to claim a slot for")
    directory = directory or lock_dir()
    directory.mkdir(parents=True, exist_ok=True)
    ids = visible_gpu_ids(count)
    start = time.monotonic()
    announced = False
    while True:
        for index, gpu in enumerate(ids):
            path = directory / f"gpu-{gpu}.lock"
            handle = open(path, "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            return GpuSlot(index, path, handle)
        if timeout is not None and time.monotonic() - start >= timeout:
            raise FerflowError(f"all {count} GPU slots in {directory} stayed busy for {timeout:g} s")
        if not announced:
            print(
                f"all {count} GPU slots in {directory} are busy; waiting for one to free up",
                file=sys.stderr,
                flush=True,
            )
            announced = True
        time.sleep(poll)
