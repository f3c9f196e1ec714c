"""``ferflow plot-search``: an architecture's Optuna search for the report: the trials table (CSV), the
optimisation history and the parameter importances (Optuna's matplotlib plots), read from the study that
``best.json`` (``ferflow search-best``) names."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import optuna
import optuna.visualization.matplotlib as optuna_plots

from ferflow import study as studies
from ferflow.config import add_settings_argument
from ferflow.plotting import plt, save_figure
from ferflow.storage import atomic_path, read_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--best", required=True, type=Path, help="best.json of the search (names its study)")
    parser.add_argument("--table", required=True, type=Path, help="trials table to write (CSV)")
    parser.add_argument("--history", required=True, type=Path, help="optimisation history figure to write")
    parser.add_argument("--importances", required=True, type=Path, help="parameter importances figure to write")
    add_settings_argument(parser, "plot-search")


def importances_figure(study: optuna.Study) -> plt.Figure:
    """Optuna's fANOVA importances; with fewer than two complete trials, a figure saying so."""
    if len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) >= 2:
        return optuna_plots.plot_param_importances(study).figure
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, "parameter importances need two complete trials", ha="center", va="center")
    return fig


def run(args: argparse.Namespace) -> int:
    best = read_json(args.best)
    study = studies.load(best["storage"], best["study"])
    with atomic_path(args.table) as tmp:
        studies.trials_frame(study).to_csv(tmp, index=False, float_format="%.6g")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        save_figure(optuna_plots.plot_optimization_history(study).figure, args.history, args.settings["dpi"])
        save_figure(importances_figure(study), args.importances, args.settings["dpi"])
    print(f"wrote {args.table}, {args.history} and {args.importances} ({len(study.trials)} trials)")
    return 0
