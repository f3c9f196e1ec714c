# Input functions of train.smk (kept apart from the rules, as `snakemake --lint` asks).


def final_is_auto(wildcards):
    return wildcards.experiment == FINAL and config["finals"] == "auto"


def train_inputs(wildcards):
    files = {split: stage_files(model_input_stage())[split] for split in ("train", "val")}
    if final_is_auto(wildcards):
        files["selection"] = checkpoints.select_final.get(model=wildcards.model).output[0]
    teacher = teacher_checkpoint(wildcards)
    if teacher:
        files["teacher"] = teacher
    return files


def teacher_checkpoint(wildcards):
    """Distillation: the teacher run's checkpoint (`<model>/<experiment>` of the setting), a DAG input: an
    architecture's deployed final, or the same seed of a sweep experiment; None without distillation."""
    distillation = experiment_settings(wildcards.model, wildcards.experiment).get("distillation")
    if not distillation:
        return None
    model, experiment = distillation["teacher"].split("/")
    if experiment == FINAL:
        return L.deployed_file(model, "checkpoint")
    return L.run_file(model, experiment, wildcards.seed, "best")


def teacher_arg(wildcards, input):
    return f"--teacher {input.teacher}" if "teacher" in input.keys() else ""


def train_settings(wildcards):
    """The training settings that define the run, as JSON: a change reruns the job (Snakemake compares only
    params computed from wildcards alone, hence no `input` argument); runtime keys excluded."""
    if final_is_auto(wildcards):
        with open(checkpoints.select_final.get(model=wildcards.model).output[0]) as fh:
            return json.dumps(json.load(fh)["settings"], sort_keys=True)
    return json.dumps(training_settings(wildcards.model, wildcards.experiment), sort_keys=True)


def train_threads(wildcards):
    return experiment_settings(wildcards.model, wildcards.experiment)["threads"]


def train_device(wildcards):
    """The training device, a resource rather than a param so that changing it reruns nothing."""
    return experiment_settings(wildcards.model, wildcards.experiment)["device"]


def sweep_settings(wildcards):
    """Each sweep experiment's training settings, for select_final (JSON)."""
    return json.dumps(
        {e: training_settings(wildcards.model, e) for e in sweep_experiments(wildcards.model)}, sort_keys=True
    )


def final_epochs_arg(wildcards):
    epochs = (config["models"][wildcards.model]["final"] or {}).get("epochs")
    return f"--epochs {epochs}" if epochs else ""
