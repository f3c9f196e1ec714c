# Data figures (R/figures/data): sample faces per class (Figure 1 of the study), class distributions per
# stage (Figure 2, from summary.json files only) and the t-SNE of raw test pixels (Figure 3). The t-SNE
# coordinates are computed by tsne_raw (tsne.* settings) and only plotted by plot_tsne_raw (figures.*).


rule tsne_raw:
    input:
        stage_files("raw")["test"],
    output:
        L.tsne_raw(),
    log:
        L.log("tsne_raw"),
    benchmark:
        L.benchmark("tsne_raw")
    conda:
        "../../envs/data.yaml"
    threads: config["threads"]
    params:
        settings=lambda wc: settings_json("tsne-raw"),
        seed=lambda wc: config["seed"],
    shell:
        "ferflow tsne-raw --split {input} --out {output} --settings {params.settings:q} --seed {params.seed} > {log} 2>&1"


rule plot_samples:
    input:
        stage_files("raw")["train"],
    output:
        report(L.data_figure("samples"), caption="../report/data_samples.rst", category="Data"),
    log:
        L.log("plot_samples"),
    conda:
        "../../envs/data.yaml"
    params:
        settings=lambda wc: settings_json("plot-data"),
        seed=lambda wc: config["seed"],
    shell:
        "ferflow plot-data samples --split {input} --seed {params.seed} --settings {params.settings:q}"
        " --out {output} > {log} 2>&1"


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
        report(L.data_figure("distribution"), caption="../report/data_distribution.rst", category="Data"),
    log:
        L.log("plot_distribution"),
    conda:
        "../../envs/data.yaml"
    params:
        summaries=lambda wc, input: " ".join(f"--summary {name}={path}" for name, path in input.items()),
        settings=lambda wc: settings_json("plot-data"),
    shell:
        "ferflow plot-data distribution {params.summaries} --settings {params.settings:q} --out {output} > {log} 2>&1"


rule plot_tsne_raw:
    input:
        L.tsne_raw(),
    output:
        report(L.data_figure("tsne_raw"), caption="../report/data_tsne_raw.rst", category="Data"),
    log:
        L.log("plot_tsne_raw"),
    conda:
        "../../envs/data.yaml"
    params:
        settings=lambda wc: settings_json("plot-data"),
    shell:
        "ferflow plot-data tsne --coords {input} --settings {params.settings:q} --out {output} > {log} 2>&1"


TARGETS.append(lambda: [L.data_figure(name) for name in DATA_FIGURES])
