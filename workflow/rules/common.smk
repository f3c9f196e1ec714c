# Config validation, paths (ferflow.layout, the one definition of the results layout) and input
# functions shared by every rule file.
import json

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from ferflow.config import SCHEMA_PATH, describe, stage_settings
from ferflow.errors import FerflowError
from ferflow.layout import DATA_FIGURES, FINAL, Layout
from ferflow.models import check_options
from ferflow.train.settings import RUNTIME_KEYS  # train settings that never rerun a job


def config_error(exc):
    """One line naming the offending config key of a schema validation error."""
    err = exc.__context__  # the jsonschema ValidationError that validate() wrapped
    return describe(err) if hasattr(err, "absolute_path") else str(exc)


def validate_config(config, schema):
    """Validate (and fill defaults) against the schema; a failure is one line naming the key.

    Returns the `train` keys the user wrote, taken before the schema fills in its defaults: the params that
    decide whether a run is retrained are built from them (see `training_settings`)."""
    written = frozenset(config.get("train") or {})
    try:
        validate(config, schema)
    except WorkflowError as exc:
        raise WorkflowError(config_error(exc)) from None
    for model, spec in config["models"].items():  # options are checked per architecture
        try:
            check_options(model, spec.get("options") or {})
        except FerflowError as exc:
            raise WorkflowError(str(exc)) from None
    return written


DATASET = config["dataset"]["name"]
L = Layout(f"results/{DATASET}", config["figures"]["format"])  # every path of the results layout (ferflow.layout)


def settings_json(command):
    """The `--settings` argument of `ferflow <command>`: the config keys it reads (ferflow.config.STAGE_SETTINGS),
    as JSON; a param, so a changed setting reruns the job."""
    return json.dumps(stage_settings(command, config), sort_keys=True)


def stage_files(stage):
    """The split files and summary of one data stage."""
    return L.stage_files(stage)


def stage_dir(stage):
    return L.stage_dir(stage)


def before_balance_stage():
    """The stage the balancing reads: AffectNet-injected when enabled, else raw."""
    return "affectnet" if config["affectnet"]["enabled"] else "raw"


def model_input_stage():
    """The stage the models train on: RGB when `rgb`, else balanced grayscale."""
    return "rgb" if config["rgb"] else "balanced"


def enabled_models():
    return [m for m, spec in config["models"].items() if spec.get("enabled", True)]


def sweep_experiments(model):
    """Sweep experiment names of one architecture, honouring `models.<m>.select`."""
    spec = config["models"][model]
    names = list(spec.get("sweep") or {})
    chosen = spec.get("select")
    if chosen is not None:
        unknown = sorted(set(chosen) - set(names))
        if unknown:
            raise ValueError(f"config key models.{model}.select names unknown experiments: {', '.join(unknown)}")
        names = [n for n in names if n in chosen]
    return names


def final_models():
    """Architectures that have a final run (`models.<m>.final` set)."""
    return [m for m in enabled_models() if config["models"][m].get("final") is not None]


def seeds():
    """The training seeds: every experiment trains once per seed (config `seeds`)."""
    return config["seeds"]


def experiments():
    """Every (model, experiment) pair the study trains: the sweep, then the finals."""
    pairs = [(m, e) for m in enabled_models() for e in sweep_experiments(m)]
    return pairs + [(m, FINAL) for m in final_models()]


def runs():
    """Every training run (model, experiment, seed)."""
    return [(m, e, s) for m, e in experiments() for s in seeds()]


def run_files(model, experiment, *whats):
    """Files (keys of ferflow.layout.RUN_FILES) of every seed of one experiment."""
    return [L.run_file(model, experiment, s, w) for s in seeds() for w in whats]


def deployed_runs():
    """Final runs that get an ONNX export and a latency table (export.onnx)."""
    return [(m, FINAL) for m in final_models()] if config["export"]["onnx"] else []


def overlay(train, model, experiment):
    """`train` overlaid by the experiment's own keys (finals: `models.<m>.final`), augmentation merged."""
    spec = config["models"][model]
    own = spec["final"] if experiment == FINAL else spec["sweep"][experiment]
    settings = {**train, **own}
    settings["augmentation"] = {**train.get("augmentation", {}), **own.get("augmentation", {})}
    return settings


def experiment_settings(model, experiment):
    """An experiment's full settings: the validated `train` section (defaults filled) under its own keys."""
    return overlay(config["train"], model, experiment)


def training_settings(model, experiment):
    """The settings that define a run (a change retrains it): the `train` keys the user wrote overlaid by
    the experiment's own, runtime keys left out. Defaults the schema fills in stay out (`ferflow train` fills
    them the same way), so that a default added by a later version replans no finished run."""
    written = {k: v for k, v in config["train"].items() if k in TRAIN_KEYS_WRITTEN}
    return {k: v for k, v in overlay(written, model, experiment).items() if k not in RUNTIME_KEYS}


def all_targets():
    """The final outputs of the DAG (the all target), gathered from the TARGETS of each stage file."""
    return [t for fn in TARGETS for t in fn()]


TARGETS = []  # each rule file appends a function returning its final outputs
