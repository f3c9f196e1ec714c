# Input functions of train.smk (kept apart from the rules, as `snakemake --lint` asks).

import shlex

from ferflow.device import GPU_PREFERENCES
from ferflow.train.settings import SOFT_LABELS, TEACHER, distils_from


def final_is_auto(wildcards):
    return wildcards.experiment == FINAL and config["finals"] == "auto"


def training_splits():
    """The model-input stage's train and val files, what every training job (a run, a search worker) reads."""
    return {split: stage_files(model_input_stage())[split] for split in ("train", "val")}


def train_inputs(wildcards):
    files = training_splits()
    if final_is_auto(wildcards):
        files["selection"] = checkpoints.select_final.get(model=wildcards.model).output[0]
    if wildcards.experiment == SEARCH:
        files["search"] = checkpoints.search_best.get(model=wildcards.model).output[0]
    return {**files, **teacher_input(wildcards)}


def run_settings(wildcards):
    """The settings that define the run (`training_settings`); a final under `finals: auto` takes those of the
    sweep experiment its selection chose (the checkpoint select_final), distillation teacher included."""
    if final_is_auto(wildcards):
        with open(checkpoints.select_final.get(model=wildcards.model).output[0]) as fh:
            return json.load(fh)["settings"]
    return defined_settings(wildcards.model, wildcards.experiment)


def defined_settings(model, experiment):
    """`training_settings` of a sweep experiment or an explicit final; the experiment `search` has the best
    trial's settings (the checkpoint search_best)."""
    if experiment == SEARCH:
        with open(checkpoints.search_best.get(model=model).output[0]) as fh:
            return json.load(fh)["settings"]
    return training_settings(model, experiment)


def teacher_input(wildcards):
    """The distillation input of a training run (`distillation_input`)."""
    return distillation_input(run_settings(wildcards), wildcards.seed)


def search_inputs(wildcards):
    """A search worker's data stage and, for a distilled search, its trials' distillation input (the first
    seed's, the seed every trial trains with)."""
    return {**training_splits(), **distillation_input(training_settings(wildcards.model, SEARCH), seeds()[0])}


def distillation_input(settings, seed):
    """Distillation: what a student with `settings` learns from (`<model>/<experiment>` of the setting), a DAG
    input named as ferflow.train.settings.distils_from says: with `ensemble`, the soft labels of every seed of
    that experiment; else the teacher's checkpoint, an architecture's deployed final or seed `seed` of a sweep
    experiment; {} without distillation."""
    kind = distils_from(settings)
    if kind is None:
        return {}
    model, experiment = settings["distillation"]["teacher"].split("/")
    if kind == SOFT_LABELS:
        return {kind: L.soft_labels(model, experiment)}
    if experiment == FINAL:
        return {kind: L.deployed_file(model, "checkpoint")}
    return {kind: L.run_file(model, experiment, seed, "best")}


def teacher_arg(wildcards, input):
    """The flag (`--teacher` or `--soft-labels`) that passes a distilled run's (or search's) teacher input."""
    return " ".join(
        f"--{key.replace('_', '-')} {shlex.quote(input[key])}" for key in (TEACHER, SOFT_LABELS) if key in input.keys()
    )


def train_settings(wildcards):
    """The training settings that define the run, as JSON: a change reruns the job (Snakemake compares only
    params computed from wildcards alone, hence no `input` argument); runtime keys excluded."""
    return json.dumps(run_settings(wildcards), sort_keys=True)


def train_experiment(wildcards):
    return experiment_settings(wildcards.model, wildcards.experiment)


def search_experiment(wildcards):
    return experiment_settings(wildcards.model, SEARCH)


def runtime(settings_of, key):
    """A runtime setting (ferflow.train.settings.RUNTIME_KEYS) of the job's experiment `settings_of(wildcards)`, as
    a resource rather than a param so that changing it reruns nothing; a switch as 1 or 0 (`ferflow train`'s
    --compile and --channels-last)."""
    return lambda wildcards: (value if isinstance(value := settings_of(wildcards)[key], str) else int(value))


def train_threads(wildcards):
    return train_experiment(wildcards)["threads"]


def gpu_resources(device_of):
    """The resources of a job that runs on `device_of(wildcards)` and may use a GPU (train, search, the videos
    target's predict_video), in one place: `gpu`, Slurm's CPUs per GPU or per task, partition and GPU type, and
    `device` (the job's flag). Without config `slurm` (its keys null) no partition or GPU type is set here: the
    profile's defaults apply."""
    slurm = config["slurm"]
    placed = {"slurm_partition": slurm["partition"] or slurm["gpu_partition"], "gpu_model": slurm["gpu_model"]}
    return {
        "gpu": gpus_for(device_of),
        "cpus_per_gpu": cpus_for(device_of, per_gpu=True),
        "cpus_per_task": cpus_for(device_of, per_gpu=False),
        **{key: slurm_placement(device_of, key) for key, given in placed.items() if given},
        "device": device_of,
    }


def training_resources(settings_of):
    """The resources of a job that trains with its experiment's settings `settings_of(wildcards)` (train, search):
    `gpu_resources` and the runtime settings `ferflow train` takes as flags."""
    return {
        **gpu_resources(runtime(settings_of, "device")),
        "compile": runtime(settings_of, "compile"),
        "channels_last": runtime(settings_of, "channels_last"),
    }


def gpus_for(device_of):
    """The resource `gpu` of a job that trains on `device_of(wildcards)`: 1 where it may train on a GPU (`auto`,
    `cuda`), else 0, so that a CPU-only cluster is never asked for a GPU (the Slurm plugin's --gpus)."""
    return lambda wildcards: int(device_of(wildcards) in GPU_PREFERENCES)


def cpus_for(device_of, per_gpu):
    """The job's threads as the Slurm plugin's `cpus_per_gpu` (per_gpu) or `cpus_per_task`: per GPU when the job
    asks for one, per task otherwise; the other one is 0 (unset)."""
    return lambda wildcards, threads: threads if gpus_for(device_of)(wildcards) == per_gpu else 0


def slurm_placement(device_of, key):
    """The Slurm resource `key` (slurm_partition or gpu_model) of a job that trains on `device_of(wildcards)`, from
    config `slurm`: with a GPU, slurm.gpu_partition (else slurm.partition) and slurm.gpu_model; on the CPU,
    slurm.partition and no GPU type (the plugin would ask for `--gpus=<model>:0`). None leaves it to the cluster."""

    def resource(wildcards):
        slurm = config["slurm"]
        if not gpus_for(device_of)(wildcards):
            return slurm["partition"] if key == "slurm_partition" else None
        return slurm["gpu_partition"] or slurm["partition"] if key == "slurm_partition" else slurm["gpu_model"]

    return resource


def sweep_settings(wildcards):
    """Each sweep experiment's training settings, for select_final (JSON)."""
    return json.dumps(
        {e: defined_settings(wildcards.model, e) for e in sweep_experiments(wildcards.model)}, sort_keys=True
    )


def select_inputs(wildcards):
    """The history of every seed of every sweep experiment. With a search, the best trial must be known first
    (sweep_settings reads it): asking for the checkpoint makes Snakemake wait for it."""
    if SEARCH in sweep_experiments(wildcards.model):
        checkpoints.search_best.get(model=wildcards.model)
    return [f for e in sweep_experiments(wildcards.model) for f in run_files(wildcards.model, e, "history")]


def search_spec(wildcards):
    """What defines a model's study (JSON, a param): trials, trial epochs, space, pruning."""
    spec = config["models"][wildcards.model]["search"]
    return json.dumps({k: spec[k] for k in ("trials", "epochs", "space", "prune")}, sort_keys=True)


def search_storage(wildcards):
    """The study's storage: search/<model>.db (sqlite), search/<model>.journal (journal) or the URL given."""
    kind = config["models"][wildcards.model]["search"]["storage"]
    return storage_url(kind, L.search_dir(wildcards.model))


def search_workers(wildcards):
    return [L.search_worker(wildcards.model, k) for k in range(config["models"][wildcards.model]["search"]["workers"])]


def final_epochs_arg(wildcards):
    epochs = (config["models"][wildcards.model]["final"] or {}).get("epochs")
    return f"--epochs {epochs}" if epochs else ""


def trained_runs():
    """The history and checkpoint of every training run (the `train_all` target)."""
    return [L.run_file(m, e, s, w) for m, e, s in runs() for w in ("history", "best")]


def evaluated_runs():
    """The test-split scores of every training run (rule evaluate; the `train_all` target)."""
    return [L.run_file(m, e, s, "metrics") for m, e, s in runs()]
