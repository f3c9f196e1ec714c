"""``ferflow models``: every registered architecture with its parameter counts and its compute (MMACs: millions
of multiply-accumulates of convolutions and linear layers for one 48×48 image)."""

from __future__ import annotations

import argparse

import torch
from torch import nn

from ferflow import models
from ferflow.faces import IMAGE_SIZE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--in-channels", type=int, default=3, help="input channels (3: the study's RGB input)")


def multiply_accumulates(model: nn.Module, in_channels: int, size: int = IMAGE_SIZE) -> int:
    """Multiply-accumulates of the Conv2d and Linear layers in one forward pass of a ``size``² image."""
    total = 0

    def count(module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output[0].numel() * module.in_channels // module.groups * kh * kw
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, in_channels, size, size))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def rows(in_channels: int = 3) -> list[tuple[str, int, int, float]]:
    """(name, total, trainable, MMACs) for each registered architecture, built without pretrained weights."""
    out = []
    for name in models.names():
        model = models.build(name, in_channels=in_channels)
        mmacs = multiply_accumulates(model, in_channels) / 1e6
        out.append((name, models.count_parameters(model), models.count_parameters(model, trainable_only=True), mmacs))
    return out


def run(args: argparse.Namespace) -> int:
    table = rows(args.in_channels)
    width = max(max(len(row[0]) for row in table), 12)
    print(f"{'architecture':<{width}}  {'parameters':>12}  {'trainable':>12}  {'MMACs@48':>10}")
    for name, total, trainable, mmacs in table:
        print(f"{name:<{width}}  {total:>12,}  {trainable:>12,}  {mmacs:>10.1f}")
    return 0
