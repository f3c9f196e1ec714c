# Figures, tables and the self-contained HTML report, drawn only from result files (history, metrics,
# t-SNE coordinates, summaries): changing a figure setting reruns these rules and nothing upstream.


include: "report_common.smk"


rule plot_run:
    input:
        history=f"{RESULTS}/runs/{{model}}/{{experiment}}/history.csv",
        metrics=f"{RESULTS}/runs/{{model}}/{{experiment}}/metrics.json",
        tsne=f"{RESULTS}/runs/{{model}}/{{experiment}}/tsne.csv",
    output:
        curves=report(
            run_figure("{model}", "{experiment}", "curves"),
            caption="../report/curves.rst",
            category="Runs",
            subcategory="{model}",
            labels={"run": "{experiment}", "figure": "training curves"},
        ),
        per_class=report(
            run_figure("{model}", "{experiment}", "per_class"),
            caption="../report/per_class.rst",
            category="Runs",
            subcategory="{model}",
            labels={"run": "{experiment}", "figure": "per-class scores"},
        ),
        confusion=report(
            run_figure("{model}", "{experiment}", "confusion"),
            caption="../report/confusion.rst",
            category="Runs",
            subcategory="{model}",
            labels={"run": "{experiment}", "figure": "confusion matrix"},
        ),
        tsne=report(
            run_figure("{model}", "{experiment}", "tsne"),
            caption="../report/tsne.rst",
            category="Runs",
            subcategory="{model}",
            labels={"run": "{experiment}", "figure": "embedding t-SNE"},
        ),
    params:
        dpi=lambda wc: config["figures"]["dpi"],
    log:
        f"{RESULTS}/logs/plot_run/{{model}}/{{experiment}}.log",
    conda:
        "../../envs/report.yaml"
    shell:
        "ferflow plot-run --history {input.history} --metrics {input.metrics} --tsne {input.tsne}"
        " --curves {output.curves} --per-class {output.per_class} --confusion {output.confusion}"
        " --tsne-figure {output.tsne} --dpi {params.dpi} > {log} 2>&1"


rule plot_sweep:
    input:
        lambda wc: [f"{run_dir(wc.model, e)}/history.csv" for e in sweep_experiments(wc.model)],
    output:
        report(
            f"{RESULTS}/figures/sweep_{{model}}.{FIGFMT}",
            caption="../report/sweep.rst",
            category="Study",
            labels={"figure": "{model} sweep"},
        ),
    params:
        dpi=lambda wc: config["figures"]["dpi"],
    log:
        f"{RESULTS}/logs/plot_sweep/{{model}}.log",
    conda:
        "../../envs/report.yaml"
    shell:
        "ferflow plot-study sweep --out {output} --dpi {params.dpi} --title '{wildcards.model} sweep' {input} > {log} 2>&1"


rule plot_params:
    input:
        lambda wc: [f"{run_dir(m, e)}/metrics.json" for m, e in runs()],
    output:
        report(
            f"{RESULTS}/figures/params_vs_accuracy.{FIGFMT}",
            caption="../report/params.rst",
            category="Study",
            labels={"figure": "scores vs parameters"},
        ),
    params:
        dpi=lambda wc: config["figures"]["dpi"],
    log:
        f"{RESULTS}/logs/plot_params/plot_params.log",
    conda:
        "../../envs/report.yaml"
    shell:
        "ferflow plot-study params --out {output} --dpi {params.dpi} {input} > {log} 2>&1"


rule tables:
    input:
        histories=lambda wc: [f"{run_dir(m, e)}/history.csv" for m in sweep_models() for e in sweep_experiments(m)],
        metrics=lambda wc: [f"{run_dir(m, e)}/metrics.json" for m, e in table_runs()],
    output:
        **{
            f"sweep_{m}": report(
                f"{RESULTS}/tables/sweep_{m}.csv",
                caption="../report/table_sweep.rst",
                category="Tables",
                labels={"table": f"{m} sweep"},
            )
            for m in sweep_models()
        },
        finals=report(
            f"{RESULTS}/tables/finals.csv",
            caption="../report/table_finals.rst",
            category="Tables",
            labels={"table": "finals"},
        ),
        markdown=[f"{RESULTS}/tables/{t}.md" for t in [f"sweep_{m}" for m in sweep_models()] + ["finals"]],
    params:
        out_dir=lambda wc, output: os.path.dirname(output.finals),
        baseline=lambda wc: " ".join(baseline_models()),
    log:
        f"{RESULTS}/logs/tables/tables.log",
    conda:
        "../../envs/report.yaml"
    shell:
        "ferflow tables --out {params.out_dir} --histories {input.histories} --metrics {input.metrics}"
        " --baseline {params.baseline} > {log} 2>&1"


rule report:
    input:
        unpack(report_inputs),
    output:
        f"{RESULTS}/report/index.html",
    params:
        results=lambda wc, output: os.path.dirname(os.path.dirname(output[0])),
        fmt=lambda wc: config["figures"]["format"],
        stages=lambda wc: " ".join(data_stages()),
        sweeps=lambda wc: " ".join(sweep_models()),
        runs=lambda wc: " ".join(f"{m}/{e}" for m, e in runs()),
        deploy=lambda wc: " ".join(f"{m}/{e}" for m, e in deployed_runs()),
    log:
        f"{RESULTS}/logs/report/report.log",
    conda:
        "../../envs/report.yaml"
    shell:
        "ferflow report --results {params.results} --out {output} --format {params.fmt} --stages {params.stages}"
        " --sweeps {params.sweeps} --runs {params.runs} --deploy {params.deploy} > {log} 2>&1"


TARGETS.append(lambda: [f"{RESULTS}/report/index.html"])
