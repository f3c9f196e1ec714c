"""Kill a ``ferflow`` process as soon as it has written a file (a training run its first ``last.pt``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def kill_after_first_epoch(args: list[str], out: Path, timeout: float = 300) -> None:
    """Run ``ferflow <args>`` in a subprocess and SIGKILL it once ``out/last.pt`` exists."""
    kill_when_exists(args, out / "last.pt", timeout)


def kill_when_exists(args: list[str], path: Path, timeout: float = 300) -> None:
    """Run ``ferflow <args>`` in a subprocess and SIGKILL it once ``path`` exists."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferflow.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while not path.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, f"no {path} after {timeout:g} s"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
