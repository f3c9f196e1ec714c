# Training: one job per (model, experiment) writing R/runs/<model>/<experiment>/ (history.csv, best.pt;
# last.pt, the resume state, is deliberately not an output so Snakemake never deletes it).
#
# Finals (experiment "final"): with `finals: explicit` their settings are `train` ⊕ `models.<m>.final`.
# With `finals: auto` the checkpoint `select_final` picks the architecture's sweep experiment with the
# highest val macro-F1 (max over epochs of history.csv) and the final run trains with that experiment's
# settings, `epochs` taken from `models.<m>.final` (when it sets them), everything else unchanged.
#
# `resources: gpu=1`: `--resources gpu=k` runs at most k trainings at once; each claims its own GPU slot.


include: "train_common.smk"


rule train:
    input:
        unpack(train_inputs),
    output:
        history=f"{RESULTS}/runs/{{model}}/{{experiment}}/history.csv",
        best=f"{RESULTS}/runs/{{model}}/{{experiment}}/best.pt",
    params:
        settings=train_settings,
        options=lambda wc: json.dumps(config["models"][wc.model].get("options") or {}, sort_keys=True),
        seed=lambda wc: config["seed"],
        data_dir=lambda wc: stage_dir(model_input_stage()),
        out_dir=lambda wc: run_dir(wc.model, wc.experiment),
    log:
        f"{RESULTS}/runs/{{model}}/{{experiment}}/train.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{model}}/{{experiment}}.tsv"
    threads: train_threads
    resources:
        gpu=1,
    conda:
        "../../envs/train.yaml"
    shell:
        "ferflow train --model {wildcards.model} --experiment {wildcards.experiment} --data-dir {params.data_dir:q}"
        " --out {params.out_dir:q} --settings {params.settings:q} --model-options {params.options:q}"
        " --seed {params.seed} --threads {threads} >> {log} 2>&1"


checkpoint select_final:
    input:
        lambda wc: [f"{run_dir(wc.model, e)}/history.csv" for e in sweep_experiments(wc.model)],
    output:
        selection_file("{model}"),
    params:
        experiments=lambda wc: sweep_experiments(wc.model),
        settings=lambda wc: json.dumps({e: experiment_settings(wc.model, e) for e in sweep_experiments(wc.model)}, sort_keys=True),
        epochs=final_epochs_arg,
    log:
        f"{RESULTS}/logs/select_final/{{model}}.log",
    conda:
        "../../envs/train.yaml"
    shell:
        "ferflow select-final --model {wildcards.model} --histories {input:q} --experiments {params.experiments:q}"
        " --settings {params.settings:q} {params.epochs} --out {output:q} > {log} 2>&1"


TARGETS.append(lambda: [f"{run_dir(m, e)}/{name}" for m, e in runs() for name in ("history.csv", "best.pt")])
