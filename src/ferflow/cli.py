"""The ``ferflow`` command: one subcommand per pipeline stage, each implemented in its own module.

A stage module exposes ``add_arguments(parser)`` and ``run(args) -> int | None``. Modules are
imported only when their subcommand runs, so ``ferflow --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from collections.abc import Callable
from typing import Any

from ferflow import __version__
from ferflow.errors import FerflowError

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module, one-line help)
    "download": ("ferflow.acquire.download", "acquire a dataset into canonical per-split files (+ val split)"),
    "synthetic": ("ferflow.synthetic", "write the embedded synthetic FER or AffectNet-like dataset as image folders"),
    "affectnet": ("ferflow.preprocess.affectnet", "inject AffectNet faces into the training split"),
    "balance": ("ferflow.preprocess.balance", "offline augmentation until every training class reaches a minimum"),
    "rgb": ("ferflow.preprocess.rgb", "convert a data stage's grayscale images to 3 identical channels"),
    "plot-data": ("ferflow.datafigures.plots", "data figures: sample grid, class distributions, raw-pixel t-SNE"),
    "tsne-raw": ("ferflow.datafigures.tsne_raw", "t-SNE coordinates of raw test pixels (PCA, then 2-D t-SNE)"),
    "models": ("ferflow.models.listing", "list registered architectures with their parameter counts"),
    "train": ("ferflow.train.trainer", "train one experiment (resumes from last.pt)"),
    "soft-labels": ("ferflow.train.soft_labels", "a seed ensemble's crop-averaged soft labels of the training images"),
    "select-final": ("ferflow.train.select", "pick an architecture's best sweep experiment by mean val macro-F1"),
    "search": ("ferflow.train.search", "one worker of an architecture's Optuna search (trials trained like any run)"),
    "search-best": ("ferflow.train.search", "the best trial of a search: the settings of the experiment `search`"),
    "deploy-seed": (
        "ferflow.evaluate.deploy_seed",
        "deploy a final's best non-collapsed seed (by val macro-F1) as its best.pt",
    ),
    "bench": ("ferflow.train.bench", "benchmark ferflow's training loop against the study-style loop"),
    "evaluate": (
        "ferflow.evaluate.scoring",
        "evaluate a checkpoint on labelled images (split file, folder, zip or CSV)",
    ),
    "embed": ("ferflow.evaluate.embed", "penultimate-layer embeddings of the test split and their t-SNE"),
    "plot-run": ("ferflow.report.figures", "figures of one run: curves, per-class scores, confusion, t-SNE"),
    "plot-study": ("ferflow.report.figures", "figures across runs: sweep curves, accuracy vs parameters"),
    "plot-search": ("ferflow.report.search", "a search's trials table, optimisation history and importances"),
    "tables": ("ferflow.report.tables", "Tables 1-2 of the study and the finals table (CSV and Markdown)"),
    "report": ("ferflow.report.html", "the self-contained HTML report"),
    "predict": ("ferflow.predict.command", "detect faces in photos or videos and predict their emotions"),
    "summarize-videos": ("ferflow.predict.summary", "one row per face track of many videos' CSVs (ferflow predict)"),
    "export-onnx": ("ferflow.deploy.export", "export a checkpoint to ONNX and check it against PyTorch"),
    "quantize": ("ferflow.deploy.quantize", "int8-quantize an ONNX model (calibrated on val) and compare it with fp32"),
    "latency": ("ferflow.deploy.latency", "CPU inference throughput of PyTorch and ONNX Runtime"),
}

EXTRAS: dict[str, str] = {
    # top-level module: the pyproject extra that installs it (`pip install 'ferflow[<extra>]'`)
    **dict.fromkeys(
        ("snakemake", "sklearn", "matplotlib", "pygments", "onnx", "onnxscript", "kaggle", "tensorboard", "optuna"),
        "pipeline",
    ),
    "snakemake_executor_plugin_slurm": "slurm",
    "mlflow": "mlflow",
    "dlib": "dlib",  # ferflow predict --detector dlib
}


def missing_extra(module: str) -> str | None:
    """The one-line message for a module of an extra that is not installed (None: not an extra's module)."""
    module = module.split(".")[0]
    if module not in EXTRAS:
        return None
    extra = EXTRAS[module]
    return f"needs {module}, which the {extra!r} extra installs: pip install 'ferflow[{extra}]'"


def positive_int(text: str) -> int:
    """The argparse type of a count that must be at least 1 (``--threads``, ``--batch-size``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


MAX_SEED = 2**32 - 1  # numpy's legacy RandomState (scikit-learn's random_state) takes no more; the schema's seed too


def seed(text: str) -> int:
    """The argparse type of a seed: an integer from 0 to :data:`MAX_SEED`."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_SEED}, got {value}")
    return value


def number(low: float = -math.inf) -> Callable[[str], float]:
    """The argparse type of a finite number >= ``low``; NaN and infinity are refused (NaN passes every bound, as
    ``--atol nan`` passed the export check)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low:g}, got {value:g}")
        return value

    return parse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, unless it has none (required, None or "") or the help
    explains it already ("(default: ...)")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or action.default in (None, "") or "(default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """A parser whose help shows defaults; its subcommands' parsers (``add_subparsers``) are of this class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: ferflow <command> [options]   (ferflow {__version__})", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'ferflow <command> --help' for a command's options."]
    return "\n".join(lines)


def parser_for(name: str) -> ArgumentParser:
    """The argument parser of command ``name``, filled by its module's ``add_arguments[_<name>]``."""
    module = importlib.import_module(COMMANDS[name][0])
    parser = ArgumentParser(prog=f"ferflow {name}", description=COMMANDS[name][1])
    add = getattr(module, f"add_arguments_{name.replace('-', '_')}", None) or module.add_arguments
    add(parser)
    return parser


def os_error_line(exc: OSError) -> str:
    """One line for an OSError: the file(s) it names and the system's reason (``a/b: Permission denied``)."""
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{' -> '.join(names)}: {reason}" if names else reason


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script (a closed pipe, as in ``ferflow predict ... | head``, is quiet)."""
    try:
        return _dispatch(argv)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _dispatch(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"ferflow: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[name][0])
        run = getattr(module, f"run_{name.replace('-', '_')}", None) or module.run
        args = parser_for(name).parse_args(rest)
        return int(run(args) or 0)
    except ModuleNotFoundError as exc:
        message = missing_extra(exc.name or "")
        if message is None:
            raise
        print(f"ferflow {name}: error: {message}", file=sys.stderr)
        return 1
    except FerflowError as exc:
        print(f"ferflow {name}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise
    except OSError as exc:  # a full disk, a missing permission, a name too long, a file where a folder goes, ...
        print(f"ferflow {name}: error: {os_error_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ferflow {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
