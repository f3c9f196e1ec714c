"""Prediction's second layer: classification of face crops, by a ferflow checkpoint run in PyTorch or, for a
``.onnx`` file, an export of ``ferflow export-onnx`` or ``ferflow quantize`` run in ONNX Runtime (its metadata
carries the classes and input format). Crops are converted exactly like the training images
(:func:`~ferflow.faces.to_face48` → :func:`~ferflow.faces.to_model_input`) and classified in batches. A checkpoint
that is not a ferflow checkpoint, or a pickle that would run code, is refused by :func:`ferflow.checkpoint.read`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image
from torch import nn

from ferflow import checkpoint
from ferflow.device import select_device
from ferflow.errors import FerflowError
from ferflow.faces import NORMALIZATION, to_face48
from ferflow.inference import AUTO_TTA, fuse_batchnorm, predict_probabilities, resolve_tta
from ferflow.ort import INPUT, OUTPUT, input_shape, ort_session, read_metadata


class OrtModel:
    """An ONNX Runtime session called like a PyTorch model: a float batch in, logits out. A batch of another image
    size than the export's input (a ``crops10`` view) is refused in one line."""

    def __init__(self, session: ort.InferenceSession, path: str | Path) -> None:
        self.session, self.path = session, path
        self.shape = input_shape(session, path)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.shape:
            raise FerflowError(
                f"{self.path}: the ONNX model takes {self.shape} inputs, the test-time views are {tuple(x.shape[1:])}: "
                "use its checkpoint for this --tta"
            )
        return torch.from_numpy(self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(x.numpy())})[0])


class OnDevice(nn.Module):
    """A model on ``device`` fed CPU batches: inputs moved there, outputs back to the CPU."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        super().__init__()
        self.model, self.device = model.to(device), device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(self.device)).cpu()


class Predictor:
    """A classifier with its input conversion: a ferflow checkpoint (PyTorch, batch norm folded, on ``device``)
    or, for a ``.onnx`` path, its export (ONNX Runtime, CPU). ``__call__`` maps face crops to probabilities,
    averaged over the test-time views of ``tta`` (:data:`ferflow.inference.TTA_VIEWS`; ``auto``: the views the
    checkpoint recommends, see :func:`ferflow.inference.resolve_tta`)."""

    def __init__(
        self,
        model_path: str | Path,
        threads: int | None = None,
        batch_size: int = 64,
        device: str = "auto",
        tta: str = AUTO_TTA,
    ) -> None:
        self.model: nn.Module | OrtModel
        if Path(model_path).suffix.lower() == ".onnx":
            if device not in ("auto", "cpu"):
                raise FerflowError(f"{model_path}: ONNX models run on the CPU; device {device!r} is for checkpoints")
            session = ort_session(model_path, threads or 0)  # 0: ONNX Runtime's default
            fields = read_metadata(session, model_path)
            fields["arch_kwargs"] = {"in_channels": fields["in_channels"]}
            self.model, self.device = OrtModel(session, model_path), torch.device("cpu")
        else:
            model, fields = checkpoint.load_model(model_path)
            fields = {**fields, "in_channels": fields["arch_kwargs"]["in_channels"]}
            self.device = select_device(device)
            self.model = OnDevice(fuse_batchnorm(model), self.device)
        if fields["normalization"] != NORMALIZATION:
            raise FerflowError(
                f"{model_path}: normalization {fields['normalization']} differs from ferflow's {NORMALIZATION}"
            )
        self.fields = fields
        self.classes: list[str] = list(fields["classes"])
        self.image_size: int = int(fields["image_size"])
        self.in_channels: int = int(fields["in_channels"])
        self.arch: str = fields["arch"]
        self.batch_size, self.tta = batch_size, resolve_tta(tta, fields)
        self.video_tta = resolve_tta(tta, fields, video=True)  # auto: the cheapest views close to the best

    def probabilities(self, faces: np.ndarray, video: bool = False) -> np.ndarray:
        """Class probabilities ``(N, classes)`` of uint8 ``(N, size, size)`` faces, ``batch_size`` at a time (the
        views of :attr:`video_tta` for a video's frames)."""
        tta = self.video_tta if video else self.tta
        return predict_probabilities(self.model, self.fields, faces, self.batch_size, tta)  # type: ignore[arg-type]

    def crop_probabilities(self, crops: list[np.ndarray], video: bool = False) -> np.ndarray:
        """Class probabilities ``(N, classes)`` of grayscale face crops of any size."""
        if not crops:
            return np.zeros((0, len(self.classes)), np.float32)
        return self.probabilities(np.stack([to_face48(Image.fromarray(c), self.image_size) for c in crops]), video)

    def __call__(self, crops: list[np.ndarray]) -> list[dict[str, float]]:
        return [
            {name: round(float(p), 6) for name, p in zip(self.classes, row)} for row in self.crop_probabilities(crops)
        ]
