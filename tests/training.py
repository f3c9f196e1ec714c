"""The ``ferflow train`` command line the training tests run (one home for its flags)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def train_args(
    stage: Path, out: Path, settings: dict[str, Any], *, model: str, seed: int = 0, extra: tuple[str, ...] = ()
) -> list[str]:
    """``ferflow train`` arguments: ``model`` trained on the data stage ``stage`` into ``out`` with ``settings``."""
    return [
        "train",
        *("--model", model, "--experiment", "exp", "--data-dir", str(stage), "--out", str(out)),
        *("--settings", json.dumps(settings), "--seed", str(seed)),
        *extra,
    ]
