"""Photometric augmentation (setting ``photometric``): the looks of faces from elsewhere — other cameras, light,
compression and scale — drawn per image: gamma, contrast, Gaussian blur and Gaussian noise.

Every random draw of an epoch is made up front with the epoch's generator (:class:`PhotometricDraw`, like the
affine and crop maps), and applied to a batch of normalised views (values in [-1, 1]) on the training device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

BLUR_SHARE = 0.5  # the share of images that are blurred (by a sigma drawn up to the setting's)
BLUR_TAPS = 5  # the side of the blur kernel (sigmas up to about 1.2 px)


@dataclass
class PhotometricDraw:
    """One batch's per-image gamma, contrast factor, blur sigma (0: none) and noise std, and its noise seed."""

    gamma: torch.Tensor
    contrast: torch.Tensor
    blur: torch.Tensor
    noise: torch.Tensor
    seed: int

    def to(self, device: torch.device) -> PhotometricDraw:
        return PhotometricDraw(*(t.to(device) for t in (self.gamma, self.contrast, self.blur, self.noise)), self.seed)


def draw_photometric(n: int, settings: dict[str, Any] | None, generator: torch.Generator) -> PhotometricDraw | None:
    """The draws of ``n`` images: gamma log-uniform in [1/(1+g), 1+g], contrast in 1 ± c, blur sigma U(0, b) for
    half of the images, noise std U(0, s) (of the [0, 1] range); None when the setting is off."""
    if not settings:
        return None
    u = torch.rand(n, 5, generator=generator, dtype=torch.float64)
    gamma = torch.exp(math.log1p(settings["gamma"]) * (2 * u[:, 0] - 1))
    contrast = 1 + settings["contrast"] * (2 * u[:, 1] - 1)
    blur = torch.where(u[:, 2] < BLUR_SHARE, settings["blur"] * u[:, 3], 0.0)
    noise = settings["noise"] * u[:, 4]
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    return PhotometricDraw(gamma.float(), contrast.float(), blur.float(), noise.float(), seed)


def gaussian_kernels(sigma: torch.Tensor) -> torch.Tensor:
    """``(n, 1, taps, taps)`` normalised Gaussian kernels; a sigma of 0 gives the identity."""
    offsets = torch.arange(BLUR_TAPS, device=sigma.device, dtype=torch.float32) - BLUR_TAPS // 2
    safe = sigma.clamp_min(1e-3)[:, None]
    line = torch.exp(-0.5 * (offsets[None] / safe) ** 2)
    line = line / line.sum(1, keepdim=True)
    return (line[:, :, None] * line[:, None, :])[:, None]


def apply_photometric(x: torch.Tensor, draw: PhotometricDraw | None) -> torch.Tensor:
    """The batch ``x`` (N, C, H, W, values in [-1, 1]) with each image's gamma, contrast, blur and noise."""
    if draw is None:
        return x
    n, channels = x.shape[:2]
    y = ((x.float() + 1) / 2).clamp(0, 1) ** draw.gamma[:, None, None, None]
    mean = y.mean(dim=(1, 2, 3), keepdim=True)
    y = (y - mean) * draw.contrast[:, None, None, None] + mean
    kernels = gaussian_kernels(draw.blur).repeat_interleave(channels, 0)
    y = F.conv2d(
        F.pad(y.reshape(1, n * channels, *y.shape[2:]), [BLUR_TAPS // 2] * 4, mode="replicate"),
        kernels,
        groups=n * channels,
    ).reshape(y.shape)
    generator = torch.Generator(device=x.device).manual_seed(draw.seed)
    noise = torch.randn(y.shape, generator=generator, device=x.device) * draw.noise[:, None, None, None]
    channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    return ((y + noise).clamp(0, 1) * 2 - 1).to(x.dtype).contiguous(memory_format=layout)
