"""The random draws of the batch-level regularisers applied after the geometric augmentation: random erasing,
mixup and cutmix (applied by :func:`apply_mix` and the training engine).

All randomness comes from the epoch's generator, so a run stays a function of (seed, epoch); nothing is
drawn when an option is off, so switching one on never changes the others' random streams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def beta_sample(alpha: float, generator: torch.Generator) -> float:
    """One draw of Beta(alpha, alpha) from two Gamma draws made with ``generator`` (via uniforms)."""
    # Gamma(alpha) by Marsaglia-Tsang needs rejection; the ratio of two uniforms' powers (Jöhnk) is exact
    # for Beta(a, a) and needs only uniforms.
    while True:
        u, v = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
        x, y = u ** (1 / alpha), v ** (1 / alpha)
        if 0 < x + y <= 1:
            return x / (x + y)


def erasing_mask(n: int, h: int, w: int, probability: float, generator: torch.Generator) -> torch.Tensor:
    """``(n, h, w)`` booleans: one rectangle (2–25 % of the area, aspect 0.3–3.3) per image, chosen with
    ``probability`` (all False for the others)."""
    u = torch.rand(n, 5, generator=generator, dtype=torch.float64)
    area = (0.02 + u[:, 0] * 0.23) * h * w
    aspect = torch.exp(math.log(0.3) + u[:, 1] * (math.log(1 / 0.3) - math.log(0.3)))
    eh = torch.sqrt(area * aspect).round().clamp(1, h)
    ew = torch.sqrt(area / aspect).round().clamp(1, w)
    top = (u[:, 2] * (h - eh + 1)).floor()
    left = (u[:, 3] * (w - ew + 1)).floor()
    rows = torch.arange(h, dtype=torch.float64)
    cols = torch.arange(w, dtype=torch.float64)
    inside_r = (rows[None] >= top[:, None]) & (rows[None] < (top + eh)[:, None])
    inside_c = (cols[None] >= left[:, None]) & (cols[None] < (left + ew)[:, None])
    return inside_r[:, :, None] & inside_c[:, None, :] & (u[:, 4] < probability)[:, None, None]


@dataclass
class MixDraw:
    """The random choices of one batch's mixup or cutmix: the mixing weight of the image itself, the shuffled
    partners, and for cutmix the pasted box (top, bottom, left, right)."""

    lam: float
    partner: torch.Tensor
    box: tuple[int, int, int, int] | None


def draw_mix(n: int, h: int, w: int, mixup: float, cutmix: float, generator: torch.Generator) -> MixDraw | None:
    """The random choices of mixup (alpha ``mixup``) or cutmix (alpha ``cutmix``) of a batch of ``n`` ``h`` × ``w``
    images with a shuffled copy of itself (None when both are off); with both on, each batch takes one of them at
    random."""
    if not (mixup or cutmix):
        return None
    use_cutmix = bool(cutmix) and (not mixup or torch.rand(1, generator=generator).item() < 0.5)
    lam = beta_sample(cutmix if use_cutmix else mixup, generator)
    partner = torch.randperm(n, generator=generator)
    if not use_cutmix:
        return MixDraw(lam, partner, None)
    cut_h, cut_w = round(h * math.sqrt(1 - lam)), round(w * math.sqrt(1 - lam))
    cy, cx = (torch.rand(2, generator=generator) * torch.tensor([h, w])).long().tolist()
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h - cut_h // 2, h)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w - cut_w // 2, w)
    return MixDraw(1 - (bottom - top) * (right - left) / (h * w), partner, (top, bottom, left, right))


def apply_mix(x: torch.Tensor, targets: torch.Tensor, draw: MixDraw | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch and its targets mixed as ``draw`` says (``draw.partner`` on the batch's device)."""
    if draw is None:
        return x, targets
    partner, lam = draw.partner, draw.lam
    if draw.box is not None:
        top, bottom, left, right = draw.box
        x = x.clone()
        x[:, :, top:bottom, left:right] = x[partner, :, top:bottom, left:right]
    else:
        x = lam * x + (1 - lam) * x[partner]
    return x, mix_targets(targets, draw)


def mix_targets(targets: torch.Tensor, draw: MixDraw | None) -> torch.Tensor:
    """Per-image class distributions (labels, a teacher's soft labels) mixed as ``draw`` mixes their images."""
    if draw is None:
        return targets
    return draw.lam * targets + (1 - draw.lam) * targets[draw.partner]
