"""Image conversions shared by acquisition, injection, evaluation and prediction.

What is converted: any Pillow mode (RGB, RGBA, palette, CMYK, 16-bit, float) becomes 8-bit grayscale;
a non-square image is centre-cropped to a square; any other size is resized to 48×48 with
antialiasing (Lanczos). Model input is ``(x / 255 - 0.5) / 0.5``, i.e. [-1, 1], with the grayscale
channel repeated when the model takes 3 channels.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ferflow.storage import IMAGE_SIZE, Split

if TYPE_CHECKING:
    import torch

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm"})
"""The file suffixes read as images wherever ferflow looks for them (datasets, AffectNet, photos to predict)."""
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})
"""The file suffixes ``ferflow predict`` and the batch-video target read as videos."""
NORMALIZATION: dict[str, float] = {"mean": 0.5, "std": 0.5}


WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
"""Pillow modes of more than 8 bits a channel (16-bit, 32-bit integer, float), rescaled rather than clipped."""


def to_grayscale_array(image: Image.Image) -> np.ndarray:
    """Any Pillow image as a 2-D uint8 grayscale array (16-bit and float images rescaled)."""
    if image.mode in WIDE_MODES:
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I") and arr.max(initial=0) > 255 else 255.0
        if image.mode == "F":
            top = max(float(arr.max(initial=0)), 1.0)
        return np.clip(arr * (255.0 / top), 0, 255).round().astype(np.uint8)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return np.asarray(image.convert("L"), dtype=np.uint8)


def square_crop(arr: np.ndarray) -> np.ndarray:
    """Centre-crop a 2-D (or HWC) array to a square."""
    h, w = arr.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return arr[top : top + side, left : left + side]


def to_face48(image: Image.Image, size: int = IMAGE_SIZE) -> np.ndarray:
    """A face image as ferflow's canonical ``(48, 48)`` uint8 grayscale array."""
    arr = square_crop(to_grayscale_array(image))
    if arr.shape != (size, size):
        arr = np.asarray(Image.fromarray(arr).resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)
    return arr


def to_model_input(images: np.ndarray | torch.Tensor, in_channels: int) -> torch.Tensor:
    """uint8 images ``(N, H, W)`` or ``(N, H, W, C)`` → float ``(N, in_channels, H, W)`` in [-1, 1]."""
    import torch  # imported here so that the data stages, which never call this, start fast

    x = torch.as_tensor(images)
    if x.ndim == 3:
        x = x.unsqueeze(-1)
    x = match_channels(x.permute(0, 3, 1, 2).float().div_(255.0), in_channels)
    return x.sub(NORMALIZATION["mean"]).div(NORMALIZATION["std"]).contiguous()


def match_channels(x: torch.Tensor, in_channels: int) -> torch.Tensor:
    """An ``(N, C, H, W)`` batch with ``in_channels`` channels: grayscale repeated to 3, or 3 averaged to 1
    (both commute with the normalisation, so they apply to raw or normalised batches alike)."""
    if x.shape[1] == in_channels:
        return x
    if in_channels == 3 and x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1)
    if in_channels == 1 and x.shape[1] == 3:
        return x.mean(dim=1, keepdim=True)
    raise ValueError(f"cannot feed {x.shape[1]}-channel images to a {in_channels}-channel model")


def to_rgb(split: Split) -> Split:
    """``(N, 48, 48)`` gray → ``(N, 48, 48, 3)`` with the gray value in every channel (RGB passes through)."""
    if split.images.ndim == 4 and split.images.shape[-1] == 3:
        return split
    if split.images.ndim != 3:
        raise ValueError(f"expected (N, H, W) grayscale images, got shape {split.images.shape}")
    return dataclasses.replace(split, images=np.repeat(split.images[..., None], 3, axis=-1))
