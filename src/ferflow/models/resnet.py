"""The study's compact residual network (481,551 parameters for 3-channel 48×48 input)."""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """Conv3×3 → BN → ReLU → Conv3×3 → BN, plus a biased 1×1 conv shortcut; ReLU after the sum,
    then MaxPool 2×2 and Dropout(p)."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)
        self.out = nn.Sequential(nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x) + self.shortcut(x))


class StudyResNet(nn.Module):
    """Two residual blocks (in→24→48 channels, 48→24→12 pixels), then Linear 6912→64→7."""

    def __init__(self, in_channels: int = 3, num_classes: int = 7, dropout: float = 0.0) -> None:
        super().__init__()
        self.blocks = nn.Sequential(ResidualBlock(in_channels, 24, dropout), ResidualBlock(24, 48, dropout))
        self.embedding = nn.Sequential(nn.Flatten(), nn.Linear(48 * 12 * 12, 64), nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(64, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 64-d penultimate embedding."""
        return self.embedding(self.blocks(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
