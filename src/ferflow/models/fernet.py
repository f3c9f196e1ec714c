"""FerNet: ferflow's compact residual networks, optionally with squeeze-and-excitation, as settings tables.

A network is a stem (Conv3×3 → BN → ReLU, at full resolution or strided) followed by stages of basic
residual blocks (Conv3×3 → BN → ReLU → Conv3×3 → BN [→ SE], plus an identity or Conv1×1+BN shortcut;
ReLU after the sum). The first block of a stage may stride. Global average pooling makes the network independent
of the input size; the embedding is the pooled last stage (after a ReLU), the classifier a Dropout and
one Linear layer. Weights: Kaiming-normal (fan-out) for convolutions, BN at (1, 0), N(0, 0.01) for the
classifier. The first stage keeps the full 48×48 resolution: in 240-batch probes on FER2013 that learned
markedly faster than striding at once (val accuracy 34.9 % vs 25.6 %), and zero-initialising each block's
last BN slowed early learning (25.6 % vs 27.1 %), so it is not done.

``fernet_fast`` trades that for latency: at batch 1 in ONNX Runtime (2 threads) SE blocks cost about
0.25 ms, as much as the convolutions of a 36-MMAC network, and the full-resolution first stage triples
the compute. With a stride-2 stem and no SE it runs about as fast as the study's ResNet (issue 13).
``fernet_fast_tiny`` is its < 100k-parameter sibling: ``fernet_tiny`` trains at 2.4 batches of 128 a
second on 2 AVX2 cores (about 2 hours for 60 epochs), ``fernet_fast_tiny`` at 8 (37 s an epoch).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Stage:
    """``blocks`` basic blocks with ``channels`` outputs; the first one strides by ``stride``."""

    channels: int
    blocks: int
    stride: int


@dataclass(frozen=True)
class Spec:
    """A stem of ``stem`` channels striding by ``stem_stride``, then ``stages``; ``se``: SE in every block."""

    stem: int
    stem_stride: int
    se: bool
    stages: tuple[Stage, ...]


SETTINGS: dict[str, Spec] = {
    "fernet": Spec(32, 1, True, (Stage(32, 1, 1), Stage(64, 1, 2), Stage(96, 1, 2), Stage(120, 1, 2))),
    "fernet_tiny": Spec(16, 1, True, (Stage(16, 1, 1), Stage(32, 1, 2), Stage(40, 1, 2), Stage(52, 1, 2))),
    "fernet_fast": Spec(16, 2, False, (Stage(32, 1, 1), Stage(96, 1, 2), Stage(144, 1, 2))),
    "fernet_fast_tiny": Spec(16, 2, False, (Stage(16, 1, 1), Stage(40, 1, 2), Stage(68, 1, 2))),
}


@torch.fx.wrap
def centre_crop(x: torch.Tensor, crop: int | None) -> torch.Tensor:
    """The centre ``crop`` × ``crop`` window of a batch larger than that (else the batch itself). A leaf of
    torch.fx tracing (its branch depends on the input's size), so that batch norm folds into a FerNet's
    convolutions (:func:`ferflow.inference.fuse_batchnorm`) for networks that crop too."""
    if crop and x.shape[-1] > crop:
        top, left = (x.shape[-2] - crop) // 2, (x.shape[-1] - crop) // 2
        return x[:, :, top : top + crop, left : left + crop]
    return x


class SqueezeExcite(nn.Module):
    """Channel attention: global average → Conv1×1 (÷``reduction``) → ReLU → Conv1×1 → sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(channels // reduction, 8)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.expand(F.relu(self.reduce(F.adaptive_avg_pool2d(x, 1))))
        return x * torch.sigmoid(gate)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm (and SE when ``se``), and a shortcut that matches shape when
    needed."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, se: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            *([SqueezeExcite(out_channels)] if se else []),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class FerNet(nn.Module):
    """A FerNet of the ``SETTINGS`` table (``variant``), for ``in_channels`` input of any size."""

    def __init__(
        self,
        variant: str = "fernet",
        in_channels: int = 1,
        num_classes: int = 7,
        dropout: float = 0.0,
        input_crop: int | None = None,
    ) -> None:
        super().__init__()
        spec = SETTINGS[variant]
        self.input_crop = input_crop
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, spec.stem, 3, spec.stem_stride, 1, bias=False),
            nn.BatchNorm2d(spec.stem),
            nn.ReLU(inplace=True),
        ]
        channels = spec.stem
        for stage in spec.stages:
            for i in range(stage.blocks):
                layers.append(BasicBlock(channels, stage.channels, stage.stride if i == 0 else 1, spec.se))
                channels = stage.channels
        self.blocks = nn.Sequential(*layers)
        self.embedding = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The explicit initialisation described in the module docstring."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.01)
                nn.init.zeros_(module.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled embedding of the last stage (non-negative: the blocks end in a ReLU). A network trained on
        crops (``input_crop``) takes the centre crop of a larger input, so it is used on whole faces."""
        return self.embedding(self.blocks(centre_crop(x, self.input_crop)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


fernet = partial(FerNet, "fernet")  # < 500k parameters
fernet_tiny = partial(FerNet, "fernet_tiny")  # < 100k parameters
fernet_fast = partial(FerNet, "fernet_fast")  # < 500k parameters, batch-1 latency of the study's ResNet
fernet_fast_tiny = partial(FerNet, "fernet_fast_tiny")  # < 100k parameters, trains 3× faster than fernet_tiny
