"""Architecture registry: one module an architecture, registered here with one line.

``build(name, in_channels=3, num_classes=7, **options)`` returns a plain ``nn.Module`` whose
``features(x)`` method gives the penultimate-layer embedding (after a ReLU), whose ``classifier``
maps it to logits, and whose ``forward(x)`` is ``classifier(features(x))``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from ferflow.errors import FerflowError

if TYPE_CHECKING:
    from torch import nn

Builder = Callable[..., "nn.Module"]


class Entry(NamedTuple):
    """A registered architecture: its builder as ``"module:callable"`` (imported only to build or inspect it)
    and the options (``models.<name>.options`` keys) that builder takes, listed here so that checking a
    config, which every ``snakemake`` call does, imports neither torch nor torchvision (tests/test_models.py
    holds the list to the builder's signature)."""

    target: str
    options: tuple[str, ...] = ()


_REGISTRY: dict[str, Entry] = {
    "resnet": Entry("ferflow.models.resnet:StudyResNet"),
    "mobilenetv2": Entry("ferflow.models.mobilenetv2:CompactMobileNetV2"),
    "vgg16": Entry("ferflow.models.vgg16:VGG16Transfer", ("pretrained",)),
    "fernet": Entry("ferflow.models.fernet:fernet"),
    "fernettiny": Entry("ferflow.models.fernet:fernet_tiny"),
    "fernetfast": Entry("ferflow.models.fernet:fernet_fast"),
    "fernetfasttiny": Entry("ferflow.models.fernet:fernet_fast_tiny"),
}


def names() -> list[str]:
    """Registered architecture names."""
    return list(_REGISTRY)


def entry(name: str) -> Entry:
    """The registry entry of ``name``; an unknown architecture is refused in one line."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise FerflowError(f"unknown architecture {name!r} (registered: {', '.join(_REGISTRY)})") from None


def builder(name: str) -> Builder:
    """The class (or factory) registered under ``name``."""
    import importlib

    module, attr = entry(name).target.split(":")
    return getattr(importlib.import_module(module), attr)


# what every architecture takes from the pipeline rather than from `models.<m>.options` (input_crop: the
# training setting `crop`, taken by the architectures that can centre-crop their input)
PIPELINE_ARGUMENTS = ("in_channels", "num_classes", "dropout", "input_crop")


def signature_options(name: str) -> list[str]:
    """The keyword parameters of an architecture's builder other than those the pipeline passes (imports it)."""
    import inspect

    parameters = inspect.signature(builder(name)).parameters
    return [p for p in parameters if p not in PIPELINE_ARGUMENTS and p != "variant"]


def option_names(name: str) -> list[str]:
    """The options (``models.<name>.options`` keys) an architecture accepts, without importing it."""
    return list(entry(name).options)


def check_options(name: str, options: dict[str, object], where: str = "") -> None:
    """Refuse unknown options of an architecture with one line naming the key (``where``: what holds them, by
    default the config key ``models.<name>.options``)."""
    allowed = option_names(name)
    where = where or f"config key models.{name}.options"
    for key in options:
        if key not in allowed:
            raise FerflowError(f"unknown {where}.{key} (allowed: {', '.join(allowed) or 'none'})")


def build(name: str, **kwargs: object) -> nn.Module:
    """Instantiate a registered architecture."""
    return builder(name)(**kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
