# Input functions of train.smk (kept apart from the rules, as `snakemake --lint` asks).
import json



def final_is_auto(wildcards):
    return wildcards.experiment == "final" and config["finals"] == "auto"


def selection_file(model):
    return f"{RESULTS}/runs/{model}/selection.json"


def train_inputs(wildcards):
    files = {split: stage_files(model_input_stage())[split] for split in ("train", "val")}
    if final_is_auto(wildcards):
        files["selection"] = checkpoints.select_final.get(model=wildcards.model).output[0]
    return files


def train_settings(wildcards, input):
    """The merged training settings, as JSON (a change reruns the job)."""
    if final_is_auto(wildcards):
        if "selection" not in input.keys():  # select_final has not run yet: re-evaluated once it has
            return "pending select_final"
        with open(input.selection) as fh:
            return json.dumps(json.load(fh)["settings"], sort_keys=True)
    return json.dumps(experiment_settings(wildcards.model, wildcards.experiment), sort_keys=True)


def train_threads(wildcards):
    return experiment_settings(wildcards.model, wildcards.experiment).get("threads", 2)


def final_epochs_arg(wildcards):
    epochs = (config["models"][wildcards.model]["final"] or {}).get("epochs")
    return f"--epochs {epochs}" if epochs else ""
