# Input functions of the figure, table and report rules (report.smk).
import os


def data_stages():
    """The data stages in pipeline order (those the config enables)."""
    return ["raw"] + (["affectnet"] if config["affectnet"]["enabled"] else []) + ["balanced"] + (
        ["rgb"] if config["rgb"] else []
    )


def sweep_models():
    """Architectures with at least one sweep experiment (each gets a sweep table and figure)."""
    return [m for m in enabled_models() if sweep_experiments(m)]


def baseline_models():
    """Architectures without a final run (the VGG16 baseline): their sweep rows join every sweep table."""
    return [m for m in sweep_models() if m not in final_models()]


def table_runs():
    """Runs in the finals table: every final run, then the baseline's runs."""
    return [(m, "final") for m in final_models()] + [(m, e) for m in baseline_models() for e in sweep_experiments(m)]


def run_figure(model, experiment, name):
    return f"{run_dir(model, experiment)}/figures/{name}.{FIGFMT}"


def report_inputs(wc):
    """Every file the HTML report embeds or summarises (never checkpoints or datasets)."""
    return {
        "summaries": [stage_files(s)["summary"] for s in data_stages()],
        "data_figures": [f"{RESULTS}/figures/data/{n}.{FIGFMT}" for n in ("samples", "distribution", "tsne_raw")],
        "tables": [f"{RESULTS}/tables/{t}.csv" for t in [f"sweep_{m}" for m in sweep_models()] + ["finals"]],
        "study_figures": [f"{RESULTS}/figures/{f}.{FIGFMT}" for f in [f"sweep_{m}" for m in sweep_models()] + ["params_vs_accuracy"]],
        "metrics": [f"{run_dir(m, e)}/metrics.json" for m, e in runs()],
        "run_figures": [run_figure(m, e, n) for m, e in runs() for n in ("curves", "per_class", "confusion", "tsne")],
        "deploy": [f"{run_dir(m, e)}/{f}" for m, e in deployed_runs() for f in ("onnx_check.json", "latency.json")],
    }
