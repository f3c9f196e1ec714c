"""The configuration schema: the one home of every pipeline setting's type, allowed values and default.

``config.schema.yaml`` ships inside the package (``workflow/schemas/config.schema.yaml`` links to it). The
Snakefile validates the config with it, which fills in the defaults; the commands take the defaults of their
options from it (:func:`default`), and ``ferflow train`` completes and checks its settings with it
(:func:`defaults`, :func:`check`). A default is therefore written once, in the schema.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ferflow.errors import FerflowError
from ferflow.storage import check_readable, parse_json_object

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")
Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many(
        {
            "integer": lambda checker, value: isinstance(value, int) and not isinstance(value, bool),
            "number": lambda checker, value: (
                (isinstance(value, int) and not isinstance(value, bool))
                or (isinstance(value, float) and math.isfinite(value))
            ),
        }
    ),
)
"""The schema's validator, for which ``2.0`` is no integer (JSON Schema's is lenient; torch and range() are not)
and NaN or infinity no number (they pass every bound)."""
MAX_VALUES, MAX_DEPTH = 100_000, 64
"""The most values and the deepest nesting a config or settings file may hold: a YAML alias bomb (9⁹ values in a
few lines) or a file nested 20,000 levels deep is refused before anything walks it."""
MAX_SETTINGS_BYTES = 1 << 20


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (the last would win silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: list[Any] = []
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` keys are overridden on purpose
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice", key_node.start_mark)
            seen.append(key)
        return super().construct_mapping(node, deep)


def check_size(value: Any, what: str) -> None:
    """Refuse a parsed config or settings value of more than :data:`MAX_VALUES` values (an alias repeated counts
    each time) or nested deeper than :data:`MAX_DEPTH`; counted without recursion, stopping at the limit."""
    stack, count = [(value, 0)], 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise FerflowError(f"{what}: more than {MAX_VALUES:,} values (a YAML alias bomb?)")
        if depth > MAX_DEPTH:
            raise FerflowError(f"{what}: nested more than {MAX_DEPTH} levels deep")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)


def read_yaml(path: str | Path) -> Any:
    """A YAML (or JSON) config or settings file, parsed strictly: a regular file (a FIFO or a device would block)
    of at most :data:`MAX_SETTINGS_BYTES`, no key twice in a mapping, bounded in size and depth
    (:func:`check_size`); a failure is one line naming the file."""
    check_readable(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_SETTINGS_BYTES + 1)
    except OSError as exc:
        raise FerflowError(f"{path}: unreadable ({exc.strerror or exc})") from None
    if len(data) > MAX_SETTINGS_BYTES:
        raise FerflowError(f"{path}: larger than {MAX_SETTINGS_BYTES:,} bytes, not a settings file")
    try:
        value = yaml.load(data, Loader=StrictLoader)  # noqa: S506 (StrictLoader is a SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = f", line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise FerflowError(f"{path}: not valid YAML ({exc.problem}{line})") from None
    except yaml.YAMLError as exc:
        raise FerflowError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    except RecursionError:
        raise FerflowError(f"{path}: nested too deeply") from None
    check_size(value, str(path))
    return value


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
    validator = Validator({"$ref": f"#/$defs/{definition}", "$defs": schema()["$defs"]})
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is not None:
        raise FerflowError(describe(error, what))


def check_config(cfg: dict[str, Any]) -> None:
    """Validate a whole config with :data:`Validator` (Snakemake's check lets ``threads: 2.0`` through); a failure
    is one line naming the key."""
    error = jsonschema.exceptions.best_match(Validator(schema()).iter_errors(cfg))
    if error is not None:
        raise FerflowError(describe(error))


STAGE_SETTINGS: dict[str, tuple[str, ...]] = {
    # command: the config keys it reads; its rule passes them in one --settings argument, named by their last part
    "download": (
        "dataset.sha256",
        "dataset.val_fraction",
        "dataset.test_split",
        "dataset.synthetic",
        "dataset.classes",
        "dataset.label_mode",
    ),
    "affectnet": (
        "affectnet.sha256",
        "affectnet.classes",
        "affectnet.label_policy",
        "affectnet.max_per_class",
        "affectnet.synthetic_per_class",
    ),
    "balance": (
        "augment.min_per_class",
        "augment.rotation",
        "augment.shift",
        "augment.zoom",
        "augment.horizontal_flip",
    ),
    "tsne-raw": ("tsne.pca_components", "tsne.perplexity", "tsne.max_iter", "tsne.max_points"),
    "embed": ("tsne.pca_components", "tsne.perplexity", "tsne.max_iter", "tsne.max_points"),
    "plot-data": ("figures.samples_per_class", "figures.dpi"),
    "plot-run": ("figures.dpi",),
    "plot-study": ("figures.dpi",),
    "plot-search": ("figures.dpi",),
    "report": ("figures.format",),
    "export-onnx": ("export.opset",),
    "quantize": ("export.calibration_images", "export.calibration_method", "export.threads"),
    "latency": ("export.latency_batch_sizes", "export.latency_repeats", "export.latency_min_seconds", "export.threads"),
    "summarize-videos": ("videos.smoothing", "videos.ema_alpha", "videos.mode_window"),
}
"""The one list of which settings each pipeline command reads. The Snakefile builds a rule's ``--settings`` from it
(:func:`stage_settings`), the command completes and checks them against the schema (:func:`resolve_stage_settings`).
File paths (``--source`` included), ``seed`` and ``threads`` stay flags of their own, and so do the options of the
commands users type (``evaluate --tta``, ``predict``)."""


def _split(key: str) -> tuple[str, str]:
    """``"export.opset"`` → ``("export", "opset")``: a config key's section and its setting name."""
    section, _, name = key.rpartition(".")
    return section, name


def stage_settings(command: str, config: dict[str, Any]) -> dict[str, Any]:
    """The settings of ``command`` taken from a validated config (the Snakefile passes them as JSON), less those
    still at their ``x-off`` value: a new option, off by default, reruns no finished job."""
    settings = {}
    for key in STAGE_SETTINGS[command]:
        section, name = _split(key)
        node = _node(key)
        if "x-off" not in node or config[section][name] != node["x-off"]:
            settings[name] = config[section][name]
    return settings


def stage_defaults(command: str) -> dict[str, Any]:
    """The schema's defaults of ``command``'s settings (a setting without one is left out)."""
    found = {}
    for section, name in map(_split, STAGE_SETTINGS[command]):
        section_defaults = defaults(section)
        if name in section_defaults:
            found[name] = section_defaults[name]
    return found


def resolve_stage_settings(command: str, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` completed with the schema's defaults and checked against it; a failure is one line naming the
    setting (an unknown one, a wrong type or value, a required one missing)."""
    keys = {_split(key)[1]: key for key in STAGE_SETTINGS[command]}
    unknown = sorted(set(given) - set(keys))
    if unknown:
        raise FerflowError(f"unknown setting {unknown[0]} of ferflow {command} (allowed: {', '.join(keys)})")
    fallback = stage_defaults(command)
    resolved = {}
    for name, key in keys.items():
        if name not in given and name not in fallback:
            raise FerflowError(f"setting {name} of ferflow {command} is required (config key {key})")
        value = given.get(name, fallback.get(name))
        if isinstance(fallback.get(name), dict) and isinstance(value, dict):
            value = {**fallback[name], **value}
        validator = Validator({**_node(key), "$defs": schema()["$defs"]})
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is not None:
            where = ".".join(map(str, [name, *error.absolute_path]))
            raise FerflowError(f"invalid setting {where} of ferflow {command}: {error.message}")
        resolved[name] = value
    return resolved


def add_settings_argument(parser: argparse.ArgumentParser, command: str) -> None:
    """``--settings``: the command's settings as one JSON object (or a YAML/JSON file holding one), keys left out
    taking the schema's defaults; parsed into ``args.settings``, a dict with every setting of the command."""

    def parse(text: str) -> dict[str, Any]:
        try:
            if text.lstrip().startswith("{"):  # JSON, parsed as JSON (YAML 1.1 reads 5e-1 as a string)
                given: Any = parse_json_object(text, "settings")
                check_size(given, "settings")
            else:
                given = read_yaml(text)
            if not isinstance(given, dict):
                raise FerflowError(f"{text}: expected a mapping of settings")
            return resolve_stage_settings(command, given)
        except FerflowError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parser.add_argument(
        "--settings",
        type=parse,
        default=json.dumps(stage_defaults(command)),  # shown by --help, parsed like a given value
        metavar="JSON|FILE",
        help="settings as a JSON object or a YAML file, keys left out taking their defaults "
        f"({', '.join(STAGE_SETTINGS[command])})",
    )
