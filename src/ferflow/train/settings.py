"""The settings of a training run: the schema's defaults overlaid by the experiment's own, checked by the schema."""

from __future__ import annotations

from typing import Any

from ferflow import config
from ferflow.errors import FerflowError

DEFAULTS: dict[str, Any] = config.defaults("train")
"""Every training setting's default, from the config schema (its ``train`` section)."""
RUNTIME_KEYS = ("device", "threads")  # may change between a kill and the resume


def resolve_settings(given: dict[str, Any]) -> dict[str, Any]:
    """The training defaults overlaid by ``given`` (augmentation merged key by key), checked against the schema
    (unknown keys, types, ranges, choices: one line naming the key)."""
    augmentation = {**DEFAULTS["augmentation"], **(given.get("augmentation") or {})}
    settings = {**DEFAULTS, **given, "augmentation": augmentation}
    config.check("experiment", settings, "training setting")
    if settings["schedule"] != "constant" and settings["plateau"]:
        raise FerflowError("settings schedule and plateau: choose one learning-rate schedule")
    return settings
