"""Transfer learning from torchvision's VGG16: the convolutional base on 48×48 input, frozen but
for block 5, under the study's small batch-normalised head (14.7M parameters, 7.1M trainable).

ImageNet weights (``pretrained=True``) come through torchvision's own download into the torch hub
cache (``$TORCH_HOME/hub/checkpoints/``, with its progress bar and hash check), and from that cache
afterwards. Offline, the model refuses to build with one line naming the file and where to put it, so
a job never trains from scratch silently.
"""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import VGG16_Weights
from torchvision.models.vgg import cfgs, make_layers

from ferflow.errors import FerflowError

WEIGHTS = VGG16_Weights.IMAGENET1K_V1
BLOCK5 = (24, 26, 28)  # indices of block5_conv1-3 in torchvision's vgg16().features
HEAD_WIDTH = 32


def cached_weights_path() -> Path:
    """Where torchvision's ImageNet VGG16 weights live in the local torch hub cache."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(WEIGHTS.url).path)


def imagenet_features_state() -> dict[str, torch.Tensor]:
    """The convolutional base's ImageNet weights: downloaded into the torch hub cache if absent."""
    path = cached_weights_path()
    try:
        state = torch.hub.load_state_dict_from_url(
            WEIGHTS.url,
            model_dir=str(path.parent),
            map_location="cpu",
            progress=True,
            check_hash=True,
            weights_only=True,
        )
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FerflowError(
            f"vgg16 pretrained: cannot download {WEIGHTS.url} ({reason}); on a machine with internet, fetch it "
            f"and put it at {path} (or set TORCH_HOME), or set models.vgg16.options.pretrained: false"
        ) from None
    except Exception as exc:  # a truncated, corrupt or foreign file (the hash check fails before it is kept)
        message = f"vgg16 pretrained: cannot load {path} ({type(exc).__name__}: {exc})".splitlines()[0]
        raise FerflowError(message) from None
    return {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}


class VGG16Transfer(nn.Module):
    """VGG16 base (block 5 trainable) → Dropout → Flatten → BN → [Linear 32 → BN → ReLU → Dropout] ×2
    → Linear 32 → BN → ReLU → Linear ``num_classes``."""

    def __init__(
        self, in_channels: int = 3, num_classes: int = 7, dropout: float = 0.5, pretrained: bool = False
    ) -> None:
        super().__init__()
        self.base = make_layers(cfgs["D"])  # torchvision's vgg16().features, without its 120M-parameter classifier
        if pretrained:
            state = imagenet_features_state()
            if in_channels != 3:
                if in_channels != 1:
                    message = f"vgg16 pretrained: ImageNet weights need 1 or 3 input channels, not {in_channels}"
                    raise FerflowError(message)
                state["0.weight"] = state["0.weight"].sum(dim=1, keepdim=True)  # exact for gray repeated ×3
        if in_channels != 3:
            self.base[0] = nn.Conv2d(in_channels, 64, 3, padding=1)
        if pretrained:
            self.base.load_state_dict(state)
        else:  # torchvision's VGG initialisation
            for layer in self.base:
                if isinstance(layer, nn.Conv2d):
                    nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(layer.bias)
        for index, layer in enumerate(self.base):
            for p in layer.parameters():
                p.requires_grad = index in BLOCK5
        dense = [nn.Dropout(dropout), nn.Flatten(), nn.BatchNorm1d(512)]
        width = 512
        for _ in range(2):
            dense += [
                nn.Linear(width, HEAD_WIDTH),
                nn.BatchNorm1d(HEAD_WIDTH),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
            ]
            width = HEAD_WIDTH
        dense += [nn.Linear(HEAD_WIDTH, HEAD_WIDTH), nn.BatchNorm1d(HEAD_WIDTH), nn.ReLU(inplace=True)]
        self.head = nn.Sequential(*dense)
        self.classifier = nn.Linear(HEAD_WIDTH, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 32-d embedding before the last Linear."""
        return self.head(self.base(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
