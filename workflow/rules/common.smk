# Config validation, paths (ferflow.layout, the one definition of the results layout) and input
# functions shared by every rule file.
import importlib.util
import json
import os
import shlex

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from ferflow import tracking
from ferflow.config import SCHEMA_PATH, check_config, check_size, describe, read_yaml, stage_settings
from ferflow.errors import FerflowError
from ferflow.layout import DATA_FIGURES, FINAL, SEARCH, Layout
from ferflow.models import check_options
from ferflow.study import resolve_spec, storage_url
from ferflow.train.settings import defining_settings, expand_recipes
from ferflow.train.settings import overlay as overlay_settings


def config_error(exc):
    """One line naming the offending config key of a schema validation error."""
    err = exc.__context__  # the jsonschema ValidationError that validate() wrapped
    return describe(err) if hasattr(err, "absolute_path") else str(exc)


def validate_config(config, schema):
    """Expand the experiments' recipes, validate (and fill defaults) against the schema; a failure is one line
    naming the key."""
    try:
        for path in workflow.configfiles:  # read again strictly: a key given twice, an alias bomb
            read_yaml(path)
        check_size(config, "config")  # before anything walks it (--config values included)
        expand_recipes(config)
        try:
            validate(config, schema)
        except WorkflowError as exc:
            raise FerflowError(config_error(exc)) from None
        check_config(config)  # stricter than validate(): 2.0 is no integer
        for model, spec in config["models"].items():  # options are checked per architecture
            check_options(model, spec.get("options") or {})
    except FerflowError as exc:
        raise WorkflowError(str(exc)) from None
    check_experiments(config)
    check_searches(config)
    set_tracking(config["tracking"])


def set_tracking(settings):
    """Runtime settings reach the commands through the environment, not params: switching a tracker replans
    nothing. MLflow asked for but not installed is one line."""
    if settings["mlflow"] and importlib.util.find_spec("mlflow") is None:
        raise WorkflowError("config key tracking.mlflow is set but mlflow is not installed: pip install -e '.[mlflow]'")
    os.environ[tracking.ENV] = tracking.environment(settings, L.root)


def check_searches(config):
    """Each search of an enabled model resolves (ferflow search would accept it), with defaults filled in, and
    no sweep experiment takes the name of the searched one."""
    for model in enabled_models():
        spec = config["models"][model]
        if spec["search"] is None:
            continue
        try:
            spec["search"] = resolve_spec(spec["search"])
        except FerflowError as exc:
            raise WorkflowError(f"config key models.{model}.search: {exc}") from None
        if SEARCH in spec["sweep"]:
            raise WorkflowError(f"config key models.{model}.sweep.{SEARCH}: the name of the searched experiment")


def check_experiments(config):
    """Each experiment of an enabled model resolves (ferflow train would accept its settings) and its
    distillation teacher names a run of this config; a failure is one line naming the experiment's key."""
    for model in enabled_models():
        spec = config["models"][model]
        keys = {e: f"models.{model}.sweep.{e}" for e in spec["sweep"]}
        if spec["final"] is not None:
            keys[FINAL] = f"models.{model}.final"
        for experiment, key in keys.items():
            try:
                distillation = defining_settings(experiment_settings(model, experiment)).get("distillation")
                if distillation:
                    check_teacher(config, distillation["teacher"], f"{model}/{experiment}")
            except FerflowError as exc:
                raise WorkflowError(f"config key {key}: {exc}") from None


def check_teacher(config, teacher, student):
    """A distillation teacher `<model>/<experiment>` must be a model of the config with that sweep experiment,
    or with a final (`<model>/final`), other than the student experiment itself."""
    if teacher == student:
        raise FerflowError(f"distillation teacher {teacher}: the experiment itself")
    model, experiment = teacher.split("/")
    spec = config["models"].get(model)
    if spec is None:
        raise FerflowError(f"distillation teacher {teacher}: no model {model} (models: {', '.join(config['models'])})")
    if experiment == FINAL and spec["final"] is None:
        raise FerflowError(f"distillation teacher {teacher}: models.{model}.final is null")
    if experiment != FINAL and experiment not in [*spec["sweep"], *([SEARCH] if spec.get("search") else [])]:
        raise FerflowError(f"distillation teacher {teacher}: models.{model} has no sweep experiment {experiment}")


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
    """Sweep experiment names of one architecture, honouring `models.<m>.select`, then `search` when the
    architecture has a search (its best trial's settings)."""
    spec = config["models"][model]
    names = list(spec.get("sweep") or {})
    chosen = spec.get("select")
    if chosen is not None:
        unknown = sorted(set(chosen) - set(names))
        if unknown:
            raise ValueError(f"config key models.{model}.select names unknown experiments: {', '.join(unknown)}")
        names = [n for n in names if n in chosen]
    return names + ([SEARCH] if spec.get("search") else [])


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


def elsewhere_datasets():
    """The datasets of faces from elsewhere that every final's deployed seed is scored on (evaluation.datasets)."""
    return list(config["evaluation"]["datasets"])


def elsewhere_files():
    """Every final's metrics on every dataset of evaluation.datasets."""
    return [L.crossdata_file(d, m, "metrics") for d in elsewhere_datasets() for m in final_models()]


def elsewhere_options(wildcards):
    """`ferflow evaluate`'s options for one dataset of evaluation.datasets (its source is --data)."""
    spec = config["evaluation"]["datasets"][wildcards.dataset]
    options = ["--classes", shlex.quote(json.dumps(spec["classes"], sort_keys=True)), "--ids", spec["ids"]]
    options += ["--sha256", spec["sha256"]] if spec["sha256"] else []
    options += ["--split", spec["split"]] + (["--detect"] if spec["detect"] else [])
    return " ".join(options)


def deployed_runs():
    """Final runs that get an ONNX export and a latency table (export.onnx)."""
    return [(m, FINAL) for m in final_models()] if config["export"]["onnx"] else []


def overlay(train, model, experiment):
    """`train` overlaid by the experiment's own keys (finals: `models.<m>.final`; the search: the fixed
    `models.<m>.search.settings`, the best trial's parameters coming from search_best), augmentation merged."""
    spec = config["models"][model]
    if experiment == FINAL:
        return overlay_settings(train, spec["final"])
    if experiment == SEARCH:
        return overlay_settings(train, spec["search"]["settings"])
    return overlay_settings(train, spec["sweep"][experiment])


def experiment_settings(model, experiment):
    """An experiment's full settings: the validated `train` section (defaults filled) under its own keys."""
    return overlay(config["train"], model, experiment)


def training_settings(model, experiment):
    """The settings that define a run, its rerun params (ferflow.train.settings.defining_settings): resolved,
    without the runtime keys and the options still off. `ferflow train` reads them back unchanged."""
    return defining_settings(experiment_settings(model, experiment))


def all_targets():
    """The final outputs of the DAG (the all target), gathered from the TARGETS of each stage file."""
    return [t for fn in TARGETS for t in fn()]


TARGETS = []  # each rule file appends a function returning its final outputs
