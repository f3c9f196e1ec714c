# Figures, tables and the self-contained HTML report, drawn only from result files (history, metrics,
# t-SNE coordinates, summaries): changing a figure setting reruns these rules and nothing upstream.
from ferflow.layout import RUN_FIGURES, SEARCH_FIGURES, TIME_FIGURE


include: "report_common.smk"


rule plot_run:
    input:
        history=L.run_file("{model}", "{experiment}", "{seed}", "history"),
        metrics=L.run_file("{model}", "{experiment}", "{seed}", "metrics"),
        tsne=L.run_file("{model}", "{experiment}", "{seed}", "tsne"),
    output:
        **{
            name: report(
                L.run_figure("{model}", "{experiment}", "{seed}", name),
                caption=f"../report/{name}.rst",
                category="Runs",
                subcategory="{model}",
                labels={"run": "{experiment}", "seed": "{seed}", "figure": title},
            )
            for name, title in zip(
                RUN_FIGURES, ("training curves", "per-class scores", "confusion matrix", "embedding t-SNE")
            )
        },
    log:
        L.log("plot_run", "{model}", "{experiment}", "seed{seed}"),
    conda:
        "../../envs/report.yaml"
    params:
        settings=lambda wc: settings_json("plot-run"),
    shell:
        "ferflow plot-run --history {input.history} --metrics {input.metrics} --tsne {input.tsne}"
        " --curves {output.curves} --per-class {output.per_class} --confusion {output.confusion}"
        " --tsne-figure {output.tsne} --settings {params.settings:q} > {log} 2>&1"


rule plot_sweep:
    input:
        lambda wc: [f for e in sweep_experiments(wc.model) for f in run_files(wc.model, e, "history")],
    output:
        report(
            L.study_figure("sweep_{model}"),
            caption="../report/sweep.rst",
            category="Study",
            labels={"figure": "{model} sweep"},
        ),
    log:
        L.log("plot_sweep", "{model}"),
    conda:
        "../../envs/report.yaml"
    params:
        settings=lambda wc: settings_json("plot-study"),
    shell:
        "ferflow plot-study sweep --out {output} --settings {params.settings:q} --title '{wildcards.model} sweep'"
        " {input} > {log} 2>&1"


rule plot_params:
    input:
        lambda wc: [L.run_file(m, e, s, "metrics") for m, e, s in runs()],
    output:
        report(
            L.study_figure("params_vs_accuracy"),
            caption="../report/params.rst",
            category="Study",
            labels={"figure": "scores vs parameters"},
        ),
    log:
        L.log("plot_params"),
    conda:
        "../../envs/report.yaml"
    params:
        settings=lambda wc: settings_json("plot-study"),
    shell:
        "ferflow plot-study params --out {output} --settings {params.settings:q} {input} > {log} 2>&1"


rule plot_time:
    input:
        lambda wc: [L.run_file(m, e, s, "history") for m, e, s in runs()],
    output:
        report(
            L.study_figure(TIME_FIGURE),
            caption="../report/time_to_accuracy.rst",
            category="Study",
            labels={"figure": "time to accuracy"},
        ),
    log:
        L.log("plot_time"),
    conda:
        "../../envs/report.yaml"
    params:
        settings=lambda wc: settings_json("plot-study"),
    shell:
        "ferflow plot-study time --out {output} --settings {params.settings:q} {input} > {log} 2>&1"


rule plot_search:
    input:
        L.search_best("{model}"),
    output:
        table=L.search_table("{model}"),
        history=report(
            L.search_figure("{model}", "history"),
            caption="../report/search.rst",
            category="Search",
            labels={"figure": "{model} optimisation history"},
        ),
        importances=report(
            L.search_figure("{model}", "importances"),
            caption="../report/search.rst",
            category="Search",
            labels={"figure": "{model} parameter importances"},
        ),
    log:
        L.log("plot_search", "{model}"),
    conda:
        "../../envs/report.yaml"
    params:
        settings=lambda wc: settings_json("plot-search"),
    shell:
        "ferflow plot-search --best {input:q} --table {output.table:q} --history {output.history:q}"
        " --importances {output.importances:q} --settings {params.settings:q} > {log} 2>&1"


rule tables:
    input:
        runs=lambda wc: [
            L.run_file(m, e, s, w) for m, e, s in runs() for w in ("history", "metrics", "val_metrics", "best")
        ],
        latency=lambda wc: [L.deployed_file(m, "latency") for m, _ in deployed_runs()],
        crossdata=lambda wc: elsewhere_files(),
    output:
        **{
            f"sweep_{m}": report(
                L.table(f"sweep_{m}"),
                caption="../report/table_sweep.rst",
                category="Tables",
                labels={"table": f"{m} sweep"},
            )
            for m in sweep_models()
        },
        **(
            {
                "crossdata": report(
                    L.table("crossdata"),
                    caption="../report/table_crossdata.rst",
                    category="Tables",
                    labels={"table": "faces from elsewhere"},
                )
            }
            if elsewhere_datasets()
            else {}
        ),
        finals=report(
            L.table("finals"),
            caption="../report/table_finals.rst",
            category="Tables",
            labels={"table": "finals"},
        ),
        seeds=report(
            L.table("seeds"),
            caption="../report/table_seeds.rst",
            category="Tables",
            labels={"table": "every seed"},
        ),
        markdown=[L.table(t, "md") for t in [f"sweep_{m}" for m in sweep_models()] + ["finals", "seeds"]],
    log:
        L.log("tables"),
    conda:
        "../../envs/report.yaml"
    params:
        out_dir=lambda wc, output: os.path.dirname(output.finals),
        runs=lambda wc: [L.run_dir(m, e, s) for m, e, s in runs()],
        baseline=lambda wc: " ".join(baseline_models()),
    shell:
        "ferflow tables --out {params.out_dir} --runs {params.runs:q} --baseline {params.baseline}"
        " --latency {input.latency:q} --crossdata {input.crossdata:q} > {log} 2>&1"


rule report:
    input:
        unpack(report_inputs),
    output:
        L.report(),
    log:
        L.log("report"),
    conda:
        "../../envs/report.yaml"
    params:
        results=lambda wc: L.root,
        settings=lambda wc: settings_json("report"),
        stages=lambda wc: " ".join(data_stages()),
        sweeps=lambda wc: " ".join(sweep_models()),
        experiments=lambda wc: " ".join(f"{m}/{e}" for m, e in experiments()),
        deploy=lambda wc: " ".join(m for m, _ in deployed_runs()),
        searches=lambda wc: " ".join(search_models()),
        crossdata=lambda wc: "--crossdata" if elsewhere_datasets() else "",
    shell:
        "ferflow report --results {params.results} --out {output} --settings {params.settings:q} --stages {params.stages}"
        " --sweeps {params.sweeps} --experiments {params.experiments} --deploy {params.deploy}"
        " --searches {params.searches} {params.crossdata} > {log} 2>&1"


TARGETS.append(lambda: [L.report()])
