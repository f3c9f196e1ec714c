# Input functions of the figure, table and report rules (report.smk).
import os


def data_stages():
    """The data stages in pipeline order (those the config enables)."""
    return (
        ["raw"]
        + (["affectnet"] if config["affectnet"]["enabled"] else [])
        + ["balanced"]
        + (["rgb"] if config["rgb"] else [])
    )


def sweep_models():
    """Architectures with at least one sweep experiment (each gets a sweep table and figure)."""
    return [m for m in enabled_models() if sweep_experiments(m)]


def baseline_models():
    """Architectures without a final run (the VGG16 baseline): their sweep rows join every sweep table."""
    return [m for m in sweep_models() if m not in final_models()]


def search_models():
    """Architectures with an Optuna search (each gets a trials table and two figures)."""
    return [m for m in enabled_models() if config["models"][m]["search"]]


def report_inputs(wc):
    """Every file the HTML report embeds or summarises (never checkpoints or datasets)."""
    return {
        "summaries": [stage_files(s)["summary"] for s in data_stages()],
        "data_figures": [L.data_figure(n) for n in DATA_FIGURES],
        "tables": [L.table(t) for t in [f"sweep_{m}" for m in sweep_models()] + ["finals", "seeds"]]
        + ([L.table("crossdata")] if elsewhere_datasets() else []),
        "study_figures": [
            L.study_figure(f) for f in [f"sweep_{m}" for m in sweep_models()] + ["params_vs_accuracy", TIME_FIGURE]
        ],
        "run_figures": [L.run_figure(m, e, s, n) for m, e, s in runs() for n in RUN_FIGURES],
        "deploy": [L.deployed_file(m, w) for m, _ in deployed_runs() for w in ("record", "onnx_check", "latency")],
        "search": [L.search_best(m) for m in search_models()]
        + [L.search_table(m) for m in search_models()]
        + [L.search_figure(m, f) for m in search_models() for f in SEARCH_FIGURES],
    }
