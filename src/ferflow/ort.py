"""The ONNX model's contract and ONNX Runtime helpers: input/output names, metadata, sessions, batched logits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from ferflow.checkpoint import check_image_size
from ferflow.errors import FerflowError
from ferflow.storage import check_readable

INPUT, OUTPUT = "input", "logits"


def example_input(ckpt: dict[str, Any], batch_size: int, seed: int = 0) -> torch.Tensor:
    """A seeded random model input of the checkpoint's shape, values in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    size = int(ckpt["image_size"])
    shape = (batch_size, int(ckpt["arch_kwargs"]["in_channels"]), size, size)
    return torch.rand(shape, generator=generator).mul_(2).sub_(1)


def ort_session(path: str | Path, threads: int, optimize: bool = True) -> ort.InferenceSession:
    """A CPU ONNX Runtime session with ``threads`` intra-op threads (graph optimisations on)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    check_readable(path)
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception classes
        raise FerflowError(f"{path}: ONNX Runtime cannot load the model ({str(exc).splitlines()[0]})") from None


def input_shape(session: ort.InferenceSession, path: str | Path) -> tuple[int, int, int]:
    """``(channels, height, width)`` of the model's input, after checking that it has the contract of an export:
    one input named ``input`` of shape ``(batch, C, H, W)``."""
    inputs = session.get_inputs()
    shape = inputs[0].shape if len(inputs) == 1 else []
    if len(inputs) != 1 or inputs[0].name != INPUT or len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:]):
        found = ", ".join(f"{i.name} {i.shape}" for i in inputs)
        raise FerflowError(f"{path}: ONNX input {found}, expected one {INPUT!r} of shape (batch, channels, H, W)")
    return int(shape[1]), int(shape[2]), int(shape[3])


def metadata(ckpt: dict[str, Any]) -> dict[str, str]:
    """The ONNX metadata that makes an export self-describing, like its checkpoint."""
    return {
        "ferflow_arch": ckpt["arch"],
        "ferflow_classes": json.dumps(ckpt["classes"]),
        "ferflow_image_size": str(ckpt["image_size"]),
        "ferflow_in_channels": str(ckpt["arch_kwargs"]["in_channels"]),
        "ferflow_normalization": json.dumps(ckpt["normalization"]),
    }


def read_metadata(session: ort.InferenceSession, path: str | Path) -> dict[str, Any]:
    """The checkpoint fields (arch, classes, image_size, in_channels, normalization) an export carries."""
    meta = session.get_modelmeta().custom_metadata_map
    try:
        fields = {
            "arch": meta["ferflow_arch"],
            "classes": json.loads(meta["ferflow_classes"]),
            "image_size": int(meta["ferflow_image_size"]),
            "in_channels": int(meta["ferflow_in_channels"]),
            "normalization": json.loads(meta["ferflow_normalization"]),
        }
    except (KeyError, ValueError):
        raise FerflowError(f"{path}: not an ONNX model of 'ferflow export-onnx' (ferflow metadata missing)") from None
    check_image_size(fields["image_size"], path)
    if fields["in_channels"] not in (1, 3):
        raise FerflowError(f"{path}: in_channels {fields['in_channels']} in its metadata, expected 1 or 3")
    return fields


def logits_of(run_batch: Any, x: torch.Tensor, batch_size: int) -> np.ndarray:
    """``run_batch`` over ``x`` in batches, concatenated (float64 for comparisons)."""
    return np.concatenate(
        [np.asarray(run_batch(x[i : i + batch_size]), dtype=np.float64) for i in range(0, len(x), batch_size)]
    )


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
