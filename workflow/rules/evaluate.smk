# Evaluation of every run's best checkpoint on the model-input stage's test split, and the t-SNE of its
# penultimate-layer embeddings. Figures are drawn from these files by report.smk, never from checkpoints.


rule evaluate:
    input:
        checkpoint=f"{RESULTS}/runs/{{model}}/{{experiment}}/best.pt",
        data=lambda wc: stage_files(model_input_stage())["test"],
    output:
        metrics=f"{RESULTS}/runs/{{model}}/{{experiment}}/metrics.json",
        per_class=f"{RESULTS}/runs/{{model}}/{{experiment}}/per_class.csv",
        confusion=f"{RESULTS}/runs/{{model}}/{{experiment}}/confusion.csv",
        predictions=f"{RESULTS}/runs/{{model}}/{{experiment}}/predictions.csv",
    log:
        f"{RESULTS}/logs/evaluate/{{model}}/{{experiment}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{model}}/{{experiment}}.tsv"
    threads: 2
    conda:
        "../../envs/report.yaml"
    shell:
        "ferflow evaluate --checkpoint {input.checkpoint} --data {input.data} --out {output.metrics}"
        " --per-class {output.per_class} --confusion {output.confusion} --predictions {output.predictions}"
        " --threads {threads} > {log} 2>&1"


rule embed:
    input:
        checkpoint=f"{RESULTS}/runs/{{model}}/{{experiment}}/best.pt",
        data=lambda wc: stage_files(model_input_stage())["test"],
    output:
        f"{RESULTS}/runs/{{model}}/{{experiment}}/tsne.csv",
    params:
        pca_components=lambda wc: config["tsne"]["pca_components"],
        perplexity=lambda wc: config["tsne"]["perplexity"],
        max_iter=lambda wc: config["tsne"]["max_iter"],
        max_points=lambda wc: config["tsne"]["max_points"],
        seed=lambda wc: config["seed"],
    log:
        f"{RESULTS}/logs/embed/{{model}}/{{experiment}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed/{{model}}/{{experiment}}.tsv"
    threads: 2
    conda:
        "../../envs/report.yaml"
    shell:
        "ferflow embed --checkpoint {input.checkpoint} --data {input.data} --out {output}"
        " --pca-components {params.pca_components} --perplexity {params.perplexity}"
        " --max-iter {params.max_iter} --max-points {params.max_points} --seed {params.seed}"
        " --threads {threads} > {log} 2>&1"


TARGETS.append(lambda: [f"{run_dir(m, e)}/{name}" for m, e in runs() for name in ("metrics.json", "tsne.csv")])
