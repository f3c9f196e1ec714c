"""ferflow: compact facial emotion recognition as a Snakemake pipeline, and a Python API to use its models.

``from ferflow import EmotionRecognizer, Face`` (see :mod:`ferflow.predict.recognizer`). The API is imported on
first use, so that ``import ferflow`` (and every ``ferflow`` command) does not pay for PyTorch and OpenCV.
"""

from __future__ import annotations

from importlib import import_module, metadata
from typing import TYPE_CHECKING, Any

try:
    __version__ = metadata.version("ferflow")  # pyproject.toml's, its one home
except metadata.PackageNotFoundError:  # run from a source tree without installing (benchmarks/gpu_study.sh)
    __version__ = "unknown"

if TYPE_CHECKING:
    from ferflow.predict.recognizer import EmotionRecognizer, Face

__all__ = ["EmotionRecognizer", "Face", "__version__"]
_LAZY = {"EmotionRecognizer": "ferflow.predict.recognizer", "Face": "ferflow.predict.recognizer"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ferflow' has no attribute {name!r}")
