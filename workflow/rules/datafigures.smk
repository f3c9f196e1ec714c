# Data figures (R/figures/data): sample faces per class (Figure 1 of the study), class distributions per
# stage (Figure 2, from summary.json files only) and the t-SNE of raw test pixels (Figure 3). The t-SNE
# coordinates are computed by tsne_raw (tsne.* settings) and only plotted by plot_tsne_raw (figures.*).


rule tsne_raw:
    input:
        stage_files("raw")["test"],
    output:
        f"{RESULTS}/data/tsne_raw.csv",
    log:
        f"{RESULTS}/logs/tsne_raw/tsne_raw.log",
    benchmark:
        f"{RESULTS}/benchmarks/tsne_raw/tsne_raw.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 2
    params:
        pca_components=lambda wc: config["tsne"]["pca_components"],
        perplexity=lambda wc: config["tsne"]["perplexity"],
        max_iter=lambda wc: config["tsne"]["max_iter"],
        max_points=lambda wc: config["tsne"]["max_points"],
        seed=lambda wc: config["seed"],
    shell:
        "ferflow tsne-raw --split {input} --out {output} --pca-components {params.pca_components}"
        " --perplexity {params.perplexity} --max-iter {params.max_iter} --max-points {params.max_points}"
        " --seed {params.seed} > {log} 2>&1"


rule plot_samples:
    input:
        stage_files("raw")["train"],
    output:
        report(f"{RESULTS}/figures/data/samples.{FIGFMT}", caption="../report/data_samples.rst", category="Data"),
    log:
        f"{RESULTS}/logs/plot_samples/plot_samples.log",
    conda:
        "../../envs/data.yaml"
    params:
        per_class=lambda wc: config["figures"]["samples_per_class"],
        dpi=lambda wc: config["figures"]["dpi"],
        seed=lambda wc: config["seed"],
    shell:
        "ferflow plot-data samples --split {input} --per-class {params.per_class} --seed {params.seed}"
        " --dpi {params.dpi} --out {output} > {log} 2>&1"


rule plot_distribution:
    input:
        unpack(
            lambda wc: {
                stage: stage_files(stage)["summary"]
                for stage in ("raw", "affectnet", "balanced")
                if stage != "affectnet" or config["affectnet"]["enabled"]
            }
        ),
    output:
        report(
            f"{RESULTS}/figures/data/distribution.{FIGFMT}", caption="../report/data_distribution.rst", category="Data"
        ),
    log:
        f"{RESULTS}/logs/plot_distribution/plot_distribution.log",
    conda:
        "../../envs/data.yaml"
    params:
        summaries=lambda wc, input: " ".join(f"--summary {name}={path}" for name, path in input.items()),
        dpi=lambda wc: config["figures"]["dpi"],
    shell:
        "ferflow plot-data distribution {params.summaries} --dpi {params.dpi} --out {output} > {log} 2>&1"


rule plot_tsne_raw:
    input:
        f"{RESULTS}/data/tsne_raw.csv",
    output:
        report(f"{RESULTS}/figures/data/tsne_raw.{FIGFMT}", caption="../report/data_tsne_raw.rst", category="Data"),
    log:
        f"{RESULTS}/logs/plot_tsne_raw/plot_tsne_raw.log",
    conda:
        "../../envs/data.yaml"
    params:
        dpi=lambda wc: config["figures"]["dpi"],
    shell:
        "ferflow plot-data tsne --coords {input} --dpi {params.dpi} --out {output} > {log} 2>&1"


TARGETS.append(lambda: [f"{RESULTS}/figures/data/{name}.{FIGFMT}" for name in ("samples", "distribution", "tsne_raw")])
