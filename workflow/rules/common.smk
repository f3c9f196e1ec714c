# Paths and input functions shared by every rule file.
import json

DATASET = config["dataset"]["name"]
RESULTS = f"results/{DATASET}"
SPLITS = ["train", "val", "test"]
FIGFMT = config["figures"]["format"]


wildcard_constraints:
    model=r"[A-Za-z0-9]+",
    experiment=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    stage=r"raw|affectnet|balanced|rgb",


def stage_files(stage):
    """The split files and summary of one data stage."""
    return {
        **{split: f"{RESULTS}/data/{stage}/{split}.npz" for split in SPLITS},
        "summary": f"{RESULTS}/data/{stage}/summary.json",
    }


def stage_dir(stage):
    return f"{RESULTS}/data/{stage}"


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


def runs():
    """Every (model, experiment) pair the study trains: the sweep, then the finals."""
    pairs = [(m, e) for m in enabled_models() for e in sweep_experiments(m)]
    return pairs + [(m, "final") for m in final_models()]


def deployed_runs():
    """Final runs that get an ONNX export and a latency table (export.onnx)."""
    return [(m, "final") for m in final_models()] if config["export"]["onnx"] else []


def run_dir(model, experiment):
    return f"{RESULTS}/runs/{model}/{experiment}"


def experiment_settings(model, experiment):
    """`train` defaults overlaid by the experiment's own keys (finals: `models.<m>.final`)."""
    spec = config["models"][model]
    own = spec["final"] if experiment == "final" else spec["sweep"][experiment]
    settings = {**config["train"], **own}
    settings["augmentation"] = {**config["train"].get("augmentation", {}), **own.get("augmentation", {})}
    return settings


def all_targets():
    """What `rule all` builds: filled in by the stage rule files through TARGETS."""
    return [t for fn in TARGETS for t in fn()]


TARGETS = []  # each rule file appends a function returning its final outputs
