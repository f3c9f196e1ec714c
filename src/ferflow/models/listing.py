"""``ferflow models``: every registered architecture with its parameter counts."""

from __future__ import annotations

import argparse

from ferflow import models


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--in-channels", type=int, default=3, help="input channels (3: the study's RGB input)")


def rows(in_channels: int = 3) -> list[tuple[str, int, int]]:
    """(name, total, trainable) for each registered architecture, built without pretrained weights."""
    out = []
    for name in models.names():
        model = models.build(name, in_channels=in_channels)
        out.append((name, models.count_parameters(model), models.count_parameters(model, trainable_only=True)))
    return out


def run(args: argparse.Namespace) -> int:
    table = rows(args.in_channels)
    width = max(len(name) for name, _, _ in table)
    print(f"{'architecture':<{max(width, 12)}}  {'parameters':>12}  {'trainable':>12}")
    for name, total, trainable in table:
        print(f"{name:<{max(width, 12)}}  {total:>12,}  {trainable:>12,}")
    return 0
