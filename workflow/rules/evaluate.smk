# Evaluation of every run's best checkpoint on the model-input stage's test split (metrics.json) and val
# split (val_metrics.json: whether the run collapsed onto one class), the t-SNE of its penultimate-layer
# embeddings, the choice of each final's deployed seed, and that seed scored on faces from elsewhere
# (evaluation.datasets: one job per dataset and final, so adding a dataset runs only its own jobs). Figures are
# drawn from these files by report.smk, never from checkpoints.


rule evaluate:
    input:
        checkpoint=L.run_file("{model}", "{experiment}", "{seed}", "best"),
        data=lambda wc: stage_files(model_input_stage())["test"],
    output:
        metrics=L.run_file("{model}", "{experiment}", "{seed}", "metrics"),
        per_class=L.run_file("{model}", "{experiment}", "{seed}", "per_class"),
        confusion=L.run_file("{model}", "{experiment}", "{seed}", "confusion"),
        predictions=L.run_file("{model}", "{experiment}", "{seed}", "predictions"),
    log:
        L.log("evaluate", "{model}", "{experiment}", "seed{seed}"),
    benchmark:
        L.benchmark("evaluate", "{model}", "{experiment}", "seed{seed}")
    conda:
        "../../envs/report.yaml"
    threads: config["threads"]
    params:
        tta=lambda wc: config["evaluation"]["tta"],
    shell:
        "ferflow evaluate --checkpoint {input.checkpoint} --data {input.data} --out {output.metrics}"
        " --per-class {output.per_class} --confusion {output.confusion} --predictions {output.predictions}"
        " --tta {params.tta} --threads {threads} > {log} 2>&1"


rule evaluate_val:
    input:
        checkpoint=L.run_file("{model}", "{experiment}", "{seed}", "best"),
        data=lambda wc: stage_files(model_input_stage())["val"],
    output:
        L.run_file("{model}", "{experiment}", "{seed}", "val_metrics"),
    log:
        L.log("evaluate_val", "{model}", "{experiment}", "seed{seed}"),
    conda:
        "../../envs/report.yaml"
    threads: config["threads"]
    shell:
        "ferflow evaluate --checkpoint {input.checkpoint} --data {input.data} --out {output} --threads {threads} > {log} 2>&1"


rule embed:
    input:
        checkpoint=L.run_file("{model}", "{experiment}", "{seed}", "best"),
        data=lambda wc: stage_files(model_input_stage())["test"],
    output:
        L.run_file("{model}", "{experiment}", "{seed}", "tsne"),
    log:
        L.log("embed", "{model}", "{experiment}", "seed{seed}"),
    benchmark:
        L.benchmark("embed", "{model}", "{experiment}", "seed{seed}")
    conda:
        "../../envs/report.yaml"
    threads: config["threads"]
    params:
        settings=lambda wc: settings_json("embed"),
        seed=lambda wc: config["seed"],
    shell:
        "ferflow embed --checkpoint {input.checkpoint} --data {input.data} --out {output} --settings {params.settings:q}"
        " --seed {params.seed} --threads {threads} > {log} 2>&1"


rule deploy_seed:
    input:
        lambda wc: run_files(wc.model, FINAL, "history", "val_metrics", "best"),
    output:
        checkpoint=L.deployed_file("{model}", "checkpoint"),
        record=L.deployed_file("{model}", "record"),
    log:
        L.log("deploy_seed", "{model}"),
    conda:
        "../../envs/report.yaml"
    params:
        runs=lambda wc: [L.run_dir(wc.model, FINAL, s) for s in seeds()],
    shell:
        "ferflow deploy-seed --runs {params.runs:q} --out {output.checkpoint:q} --record {output.record:q} > {log} 2>&1"


rule evaluate_elsewhere:
    input:
        L.deployed_file("{model}", "checkpoint"),
    output:
        metrics=L.crossdata_file("{dataset}", "{model}", "metrics"),
        predictions=L.crossdata_file("{dataset}", "{model}", "predictions"),
    log:
        L.log("evaluate_elsewhere", "{dataset}", "{model}"),
    benchmark:
        L.benchmark("evaluate_elsewhere", "{dataset}", "{model}")
    conda:
        "../../envs/report.yaml"
    threads: config["threads"]
    params:
        source=lambda wc: config["evaluation"]["datasets"][wc.dataset]["source"],
        options=elsewhere_options,
        tta=lambda wc: config["evaluation"]["tta"],
    shell:
        "ferflow evaluate --checkpoint {input} --data {params.source:q} {params.options} --out {output.metrics}"
        " --predictions {output.predictions} --tta {params.tta} --threads {threads} > {log} 2>&1"


TARGETS.append(
    lambda: [L.run_file(m, e, s, w) for m, e, s in runs() for w in ("metrics", "val_metrics", "tsne")]
    + [L.deployed_file(m, w) for m in final_models() for w in ("checkpoint", "record")]
    + elsewhere_files()
)
