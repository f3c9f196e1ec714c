"""The study's compact MobileNetV2 for 48×48 faces (132,935 parameters)."""

from __future__ import annotations

import torch
from torch import nn

# (expansion t, output channels c, repeats n, first stride s), as in the study
SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 1, 1),
    (6, 32, 2, 2),
    (6, 64, 1, 2),
    (6, 96, 1, 1),
)


def conv_bn(
    in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1, relu6: bool = True
) -> nn.Sequential:
    """Conv (no bias) → BN (→ ReLU6)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if relu6:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """1×1 expansion (skipped when t = 1) → depthwise 3×3 → linear 1×1 projection; residual when
    the stride is 1 and the channels match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = [conv_bn(in_channels, hidden, 1)] if expansion != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, out_channels, 1, relu6=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class CompactMobileNetV2(nn.Module):
    """Stem Conv3×3 (stride 1) → inverted residual blocks → 1×1 conv 96→128 → Dropout → GAP → Linear."""

    def __init__(self, in_channels: int = 3, num_classes: int = 7, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(in_channels, 32, 3)]
        channels = 32
        for t, c, n, s in SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(channels, c, s if i == 0 else 1, t))
                channels = c
        layers += [conv_bn(channels, 128, 1), nn.Dropout(dropout), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(128, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 128-d globally pooled embedding."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
