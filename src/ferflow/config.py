"""The configuration schema: the one home of every pipeline setting's type, allowed values and default.

``config.schema.yaml`` ships inside the package (``workflow/schemas/config.schema.yaml`` links to it). The
Snakefile validates the config with it, which fills in the defaults; the commands take the defaults of their
options from it (:func:`default`), and ``ferflow train`` completes and checks its settings with it
(:func:`defaults`, :func:`check`). A default is therefore written once, in the schema.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ferflow.errors import FerflowError

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


@cache
def schema() -> dict[str, Any]:
    """The parsed schema (read once)."""
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _node(section: str) -> dict[str, Any]:
    """The schema of a dotted config section (``""`` is the whole config, ``"train.augmentation"`` a part)."""
    node = schema()
    for part in filter(None, section.split(".")):
        node = node["properties"][part]
    return node


def defaults(section: str = "") -> dict[str, Any]:
    """The defaults a section's keys get when the config leaves them out, nested (``defaults("train")``)."""
    found: dict[str, Any] = {}
    for name, sub in _node(section).get("properties", {}).items():
        if "default" in sub:
            value = copy.deepcopy(sub["default"])
            if isinstance(value, dict) and "properties" in sub:
                value = {**defaults(f"{section}.{name}".lstrip(".")), **value}
            found[name] = value
    return found


def default(key: str) -> Any:
    """The default of one config key, e.g. ``default("tsne.perplexity")``."""
    section, _, name = key.rpartition(".")
    try:
        return defaults(section)[name]
    except KeyError:
        raise KeyError(f"config key {key} has no default in {SCHEMA_PATH.name}") from None


def describe(error: jsonschema.ValidationError, what: str = "config key") -> str:
    """One line naming the offending key of a validation error (the Snakefile's config errors read alike)."""
    path = ".".join(map(str, error.absolute_path))
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        return f"unknown {what} {'.'.join(filter(None, [path, unknown[0]]))} (allowed: {', '.join(allowed)})"
    return f"invalid {what} {path or '(top level)'}: {error.message}"


def check(definition: str, instance: dict[str, Any], what: str) -> None:
    """Validate ``instance`` against the schema's ``$defs/<definition>``; a failure is a one-line error."""
    validator = jsonschema.Draft202012Validator({"$ref": f"#/$defs/{definition}", "$defs": schema()["$defs"]})
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is not None:
        raise FerflowError(describe(error, what))
