# Training: one job per (model, experiment, seed) writing R/runs/<model>/<experiment>/seed<k>/ (history.csv,
# best.pt; last.pt, the resume state of an interrupted job, is deliberately not an output so Snakemake
# never deletes it; a finished last.pt is ignored, so a job run again retrains).
#
# Finals (experiment "final"): with `finals: explicit` their settings are `train` ⊕ `models.<m>.final`.
# With `finals: auto` the checkpoint `select_final` picks the architecture's sweep experiment with the
# highest mean over seeds of val macro-F1 (max over epochs of history.csv) and the final trains with that
# experiment's settings, `epochs` taken from `models.<m>.final` (when it sets them), everything else
# unchanged. Runtime settings (`device`, `threads`, `compile`, `channels_last`) are passed outside the params, as
# resources: changing them reruns nothing.
#
# `resources: gpu`: 1 under `device: auto` or `cuda`, 0 under `cpu` or `mps`. `--resources gpu=k` runs at most k
# GPU trainings at once; each claims its own GPU slot (ferflow.device). Under Slurm a GPU job asks for `--gpus=1`
# (`--gpus=<slurm.gpu_model>:1`), `--cpus-per-gpu` (its threads) and the partition slurm.gpu_partition, a CPU job for
# no GPU, `--cpus-per-task` (its threads) and slurm.partition: every training rule takes them from
# training_resources, its memory and walltime from the Slurm profile.


include: "train_common.smk"


rule train:
    input:
        unpack(train_inputs),
    output:
        history=L.run_file("{model}", "{experiment}", "{seed}", "history"),
        best=L.run_file("{model}", "{experiment}", "{seed}", "best"),
    log:
        L.run_file("{model}", "{experiment}", "{seed}", "log"),
    benchmark:
        L.benchmark("train", "{model}", "{experiment}", "seed{seed}")
    conda:
        "../../envs/train.yaml"
    threads: train_threads
    resources:
        **training_resources(train_experiment),
    params:
        settings=train_settings,
        options=lambda wc: json.dumps(config["models"][wc.model].get("options") or {}, sort_keys=True),
        data_dir=lambda wc: stage_dir(model_input_stage()),
        out_dir=lambda wc: L.run_dir(wc.model, wc.experiment, wc.seed),
        teacher=teacher_arg,
    shell:
        "ferflow train --model {wildcards.model} --experiment {wildcards.experiment} --data-dir {params.data_dir:q}"
        " --out {params.out_dir:q} --settings {params.settings:q} --model-options {params.options:q}"
        " --seed {wildcards.seed} --threads {threads} --device {resources.device} --compile {resources.compile}"
        " --channels-last {resources.channels_last} {params.teacher} >> {log} 2>&1"


# A seed ensemble as a distillation teacher (`distillation: {teacher: <model>/<experiment>, ensemble: true}`): every
# seed of the teacher experiment predicts the training images once, with the evaluation's test-time augmentation.


rule soft_labels:
    input:
        train=lambda wc: stage_files(model_input_stage())["train"],
        teachers=lambda wc: run_files(wc.model, wc.experiment, "best"),
    output:
        L.soft_labels("{model}", "{experiment}"),
    log:
        L.log("soft_labels", "{model}", "{experiment}"),
    benchmark:
        L.benchmark("soft_labels", "{model}", "{experiment}")
    conda:
        "../../envs/train.yaml"
    threads: config["threads"]
    params:
        tta=config["evaluation"]["tta"],
    shell:
        "ferflow soft-labels {input.teachers:q} --data {input.train:q} --tta {params.tta}"
        " --threads {threads} --out {output:q} > {log} 2>&1"


checkpoint select_final:
    input:
        select_inputs,
    output:
        L.selection("{model}"),
    log:
        L.log("select_final", "{model}"),
    conda:
        "../../envs/train.yaml"
    params:
        settings=sweep_settings,
        epochs=final_epochs_arg,
    shell:
        "ferflow select-final --model {wildcards.model} --histories {input:q}"
        " --settings {params.settings:q} {params.epochs} --out {output:q} > {log} 2>&1"


# The Optuna search of an architecture (models.<m>.search): `workers` jobs share one study, each training trials
# (search/<model>/trial<k>/, like any run) until the study holds `trials` finished ones; its storage
# (search/<model>.db) is no output, so a killed search keeps its finished trials and a rerun carries on. The
# checkpoint search_best then gives the sweep experiment `search` the best trial's settings.


rule search:
    input:
        unpack(search_inputs),
    output:
        L.search_worker("{model}", "{worker}"),
    log:
        L.log("search", "{model}", "worker{worker}"),
    benchmark:
        L.benchmark("search", "{model}", "worker{worker}")
    wildcard_constraints:
        worker=r"\d+",
    conda:
        "../../envs/train.yaml"
    threads: lambda wc: search_experiment(wc)["threads"]
    resources:
        **training_resources(search_experiment),
    params:
        settings=lambda wc: json.dumps(training_settings(wc.model, SEARCH), sort_keys=True),
        search=search_spec,
        storage=search_storage,
        options=lambda wc: json.dumps(config["models"][wc.model].get("options") or {}, sort_keys=True),
        data_dir=lambda wc: stage_dir(model_input_stage()),
        trials_dir=lambda wc: L.search_dir(wc.model),
        seed=lambda wc: seeds()[0],
        teacher=teacher_arg,
    shell:
        "ferflow search --model {wildcards.model} --worker {wildcards.worker} --data-dir {params.data_dir:q}"
        " --trials-dir {params.trials_dir:q} --storage {params.storage:q} --settings {params.settings:q}"
        " --search {params.search:q} --model-options {params.options:q} --seed {params.seed} --threads {threads}"
        " --device {resources.device} --compile {resources.compile} --channels-last {resources.channels_last}"
        " {params.teacher} --out {output:q} >> {log} 2>&1"


checkpoint search_best:
    input:
        search_workers,
    output:
        L.search_best("{model}"),
    log:
        L.log("search_best", "{model}"),
    conda:
        "../../envs/train.yaml"
    shell:
        "ferflow search-best --workers {input:q} --out {output:q} > {log} 2>&1"


# `snakemake train_all`: every training run of the config and its evaluation on the test split (metrics.json),
# nothing else downstream (benchmarks/gpu_study.sh)
rule train_all:
    input:
        trained_runs(),
        evaluated_runs(),
    localrule: True


TARGETS.append(trained_runs)
