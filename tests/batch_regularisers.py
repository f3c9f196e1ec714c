"""Random erasing, mixup and cutmix of one batch, drawn just before it is used: the reference against which the
engine's draws (made once per epoch, :mod:`ferflow.train.mixing`) are checked."""

from __future__ import annotations

import torch

from ferflow.train.mixing import apply_mix, draw_mix, erasing_mask


def random_erasing(x: torch.Tensor, probability: float, generator: torch.Generator) -> torch.Tensor:
    """Erase one rectangle (:func:`~ferflow.train.mixing.erasing_mask`) per image with ``probability``; the
    rectangle is filled with 0, the normalised mid-grey."""
    n, _, h, w = x.shape
    return x.masked_fill(erasing_mask(n, h, w, probability, generator)[:, None].to(x.device), 0.0)


def mix(
    x: torch.Tensor, targets: torch.Tensor, mixup: float, cutmix: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup (alpha ``mixup``) or cutmix (alpha ``cutmix``) of the batch with a shuffled copy of itself;
    with both on, each batch takes one of them at random. Targets are mixed in proportion to the pixels."""
    draw = draw_mix(len(x), x.shape[2], x.shape[3], mixup, cutmix, generator)
    if draw is not None:
        draw.partner = draw.partner.to(x.device)
    return apply_mix(x, targets, draw)
