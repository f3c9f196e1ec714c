"""The settings of a training run: the schema's defaults overlaid by the experiment's own, checked by the schema."""

from __future__ import annotations

from typing import Any

from ferflow import config
from ferflow.errors import FerflowError

DEFAULTS: dict[str, Any] = config.defaults("train")
"""Every training setting's default, from the config schema (its ``train`` section)."""
RUNTIME_SWITCHES = ("compile", "channels_last")
"""The runtime settings that switch a way of computing on or off (``ferflow train --compile 1``)."""
RUNTIME_KEYS = ("device", "threads", *RUNTIME_SWITCHES)
"""Settings that say how a run computes, not what it learns: they may change between a kill and the resume, and
changing them retrains nothing (the DAG passes them to ``ferflow train`` outside the rule's params)."""
OPTIONS: dict[str, Any] = config.schema()["$defs"]["experiment"]["properties"]
"""The schema of every training setting: its type and, for an option that can be off, the value at which it is
(``x-off``, also its default)."""


def resolve_settings(given: dict[str, Any]) -> dict[str, Any]:
    """The training defaults overlaid by ``given`` (augmentation merged key by key), checked against the schema
    (unknown keys, types, ranges, choices: one line naming the key)."""
    augmentation = {**DEFAULTS["augmentation"], **(given.get("augmentation") or {})}
    settings = {**DEFAULTS, **given, "augmentation": augmentation}
    config.check("experiment", settings, "training setting")
    if settings["schedule"] != "constant" and settings["plateau"]:
        raise FerflowError("settings schedule and plateau: choose one learning-rate schedule")
    return settings


def _canonical(settings: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """``settings`` without the options still at their ``x-off`` value (recursing into objects such as
    ``augmentation``) and those unused for want of their ``x-only-with`` settings (momentum without sgd), a whole
    number written for a ``number`` setting as a float (``5`` and ``5.0`` alike)."""
    kept: dict[str, Any] = {}
    for key, value in settings.items():
        spec = options.get(key, {})
        if "x-off" in spec and value == spec["x-off"] and isinstance(value, bool) == isinstance(spec["x-off"], bool):
            continue
        if any(settings.get(other) != needed for other, needed in spec.get("x-only-with", {}).items()):
            continue
        if isinstance(value, dict) and "properties" in spec:
            value = _canonical(value, spec["properties"])
        elif "number" in spec.get("type", ()) and type(value) is int:
            value = float(value)
        kept[key] = value
    return kept


TEACHER = "teacher"  # distillation from a teacher checkpoint run on every batch (ferflow train --teacher)
SOFT_LABELS = "soft_labels"  # distillation from a seed ensemble's precomputed soft labels (--soft-labels)


def distils_from(settings: dict[str, Any]) -> str | None:
    """What a run's distillation learns from: :data:`SOFT_LABELS` with ``ensemble: true``, else :data:`TEACHER`;
    None without distillation. Each is the name of the run's input in the DAG and of its ``ferflow train`` flag."""
    distillation = settings.get("distillation")
    if not distillation:
        return None
    return SOFT_LABELS if distillation.get("ensemble") else TEACHER


def defining_settings(given: dict[str, Any]) -> dict[str, Any]:
    """The settings that define what a run learns, the params whose change retrains it: ``given`` resolved
    (defaults filled in, checked), without the runtime keys, each option still at its off value and each option
    the run does not use. A changed default therefore retrains the runs relying on it, a key written at its default
    or an unused option retrains nothing, and a new option, off by default, retrains no finished run.
    ``resolve_settings`` of the result trains as ``resolve_settings(given)`` does, but for the runtime keys: an
    option left out is at its default, which is its off value, or unused."""
    resolved = resolve_settings(given)
    return _canonical({k: v for k, v in resolved.items() if k not in RUNTIME_KEYS}, OPTIONS)


def overlay(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """An experiment's settings: ``base`` (the config's ``train`` section) under the experiment's ``own`` keys,
    ``augmentation`` merged key by key."""
    return {**base, **own, "augmentation": {**base.get("augmentation", {}), **own.get("augmentation", {})}}


def expand_recipes(cfg: dict[str, Any]) -> None:
    """Replace, in place, the ``recipe: <name>`` of every experiment (``models.<m>.sweep.<e>``,
    ``models.<m>.final``) by the named recipe of ``recipes`` overlaid by the experiment's own keys; an unknown
    name is a one-line error naming the key. Runs before the schema check (which knows no ``recipe`` key)."""
    recipes = cfg.get("recipes") or {}
    for model, spec in (cfg.get("models") or {}).items():
        if not isinstance(spec, dict):
            continue
        places = [(spec.get("sweep"), name, f"models.{model}.sweep.{name}") for name in spec.get("sweep") or {}]
        places.append((spec, "final", f"models.{model}.final"))
        for parent, name, key in places:
            experiment = parent.get(name) if isinstance(parent, dict) else None
            if not isinstance(experiment, dict) or "recipe" not in experiment:
                continue
            own = dict(experiment)
            recipe = own.pop("recipe")
            if not isinstance(recipe, str) or not isinstance(recipes.get(recipe), dict):
                known = ", ".join(recipes) or "none"
                raise FerflowError(f"invalid config key {key}.recipe: {recipe!r} is no recipe (recipes: {known})")
            parent[name] = overlay(recipes[recipe], own)
