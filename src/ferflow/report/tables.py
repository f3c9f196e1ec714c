"""Tables 1 and 2 of the study (each architecture's sweep), the finals table and the per-seed detail table,
as CSV and Markdown. Each experiment is trained once per seed; its row gives the mean ± standard
deviation over its seeds and how many of them collapsed (:func:`ferflow.results.collapse_reason`).

Sweep tables (``sweep_<model>``): one row per experiment with the validation accuracy, macro-F1 and
the happy and disgust F1 at each seed's best epoch (by val macro-F1, the epoch best.pt keeps, from
history.csv) and the test accuracy and macro-F1 of best.pt (metrics.json). The runs of the
``--baseline`` architectures (the VGG16 transfer baseline) are appended to every other architecture's
table, as in the study. The finals table: every final and baseline experiment with its parameter
count, multiply-accumulates of one 48×48 image (MMACs, of its first seed's best.pt) and, for a deployed final
(``--latency``: the latency.json files of ``ferflow latency``), the batch-1 CPU latency of its ONNX Runtime fp32
model (median ms), then val and test scores and per-class test F1. ``seeds``: one row per run, the values behind every
mean, with the dead-unit fraction, the most predicted val class and why a run counts as collapsed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ferflow.classes import KNOWN_CLASSES
from ferflow.errors import FerflowError
from ferflow.layout import FINAL, RUN_FILES, run_of
from ferflow.metrics import mean_recall
from ferflow.results import run_record
from ferflow.storage import atomic_path, read_json, write_text

SCORES = {
    "val_acc": "Val accuracy",
    "val_macro_f1": "Val macro-F1",
    "val_f1_happy": "Happy F1 (val)",
    "val_f1_disgust": "Disgust F1 (val)",
    "test_acc": "Test accuracy",
    "test_macro_f1": "Test macro-F1",
    **{f"test_f1_{name}": f"F1 {name}" for name in KNOWN_CLASSES},
}
"""Every score column that is averaged over seeds, with its heading."""
SWEEP_SCORES = ["val_acc", "val_macro_f1", "val_f1_happy", "val_f1_disgust", "test_acc", "test_macro_f1"]
FINALS_SCORES = ["val_acc", "val_macro_f1", "test_acc", "test_macro_f1", *(f"test_f1_{n}" for n in KNOWN_CLASSES)]
GROUP_COLUMNS = {
    "model": "Model",
    "experiment": "Experiment",
    "parameters": "Parameters",
    "mmacs": "MMACs",
    "latency_ms": "Batch-1 CPU ms",
    "seeds": "Seeds",
    "collapsed": "Collapsed",
    "epochs": "Epochs",
}
SEED_COLUMNS = {
    "model": "Model",
    "experiment": "Experiment",
    "seed": "Seed",
    "best_epoch": "Best epoch",
    "epochs": "Epochs",
    "val_acc": "Val accuracy",
    "val_macro_f1": "Val macro-F1",
    "test_acc": "Test accuracy",
    "test_macro_f1": "Test macro-F1",
    "val_dead_units": "Dead units (val)",
    "val_top_class": "Top class (val)",
    "val_top_share": "Top-class share (val)",
    "collapsed": "Collapsed",
    "collapse": "Why collapsed",
}
SWEEP_COLUMNS = ["model", "experiment", "seeds", "collapsed", "epochs", *SWEEP_SCORES]
FINALS_COLUMNS = ["model", "experiment", "parameters", "mmacs", "latency_ms", "seeds", "collapsed", *FINALS_SCORES]
NUMBER_FORMATS = {"mmacs": "{:.1f}", "latency_ms": "{:.3f}"}
"""How the tables write the columns that are neither scores (in %) nor counts."""
LATENCY_ENGINE = "onnxruntime"  # the finals table's latency: ONNX Runtime fp32 at batch 1 (latency.json rows)


CROSSDATA_COLUMNS = {
    "model": "Model",
    "dataset": "Dataset",
    "detect": "Detected",
    "ids": "Ids",
    "images": "Images",
    "no_face": "No face",
    "accuracy": "Accuracy",
    "mean_recall": "Mean recall",
    "macro_f1": "Macro-F1",
    **{f"recall_{name}": f"Recall {name}" for name in KNOWN_CLASSES},
}
"""The columns of the faces-from-elsewhere table (``crossdata``): one row per final and dataset."""


def headers() -> dict[str, str]:
    """The heading of every column of every table (scores as ``<score>_mean`` and ``<score>_std``)."""
    names = {**GROUP_COLUMNS, **SEED_COLUMNS, **CROSSDATA_COLUMNS}
    for score, title in SCORES.items():
        names[f"{score}_mean"], names[f"{score}_std"] = title, f"{title} std"
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", required=True, type=Path, help="folder for sweep_<model>, finals and seeds (.csv and .md)"
    )
    parser.add_argument(
        "--runs",
        nargs="+",
        required=True,
        type=Path,
        help="run folders runs/<model>/<experiment>/seed<k>/ (history.csv, metrics.json, val_metrics.json)",
    )
    parser.add_argument("--baseline", nargs="*", default=[], help="architectures whose runs join every sweep table")
    parser.add_argument(
        "--latency", nargs="*", default=[], type=Path, help="latency.json of each deployed final (ferflow latency)"
    )
    parser.add_argument(
        "--crossdata",
        nargs="*",
        default=[],
        type=Path,
        help="crossdata/<dataset>/<model>.json of each final on faces from elsewhere (ferflow evaluate)",
    )


def crossdata_table(paths: list[Path]) -> pd.DataFrame:
    """One row per final and dataset of faces from elsewhere (``crossdata/<dataset>/<model>.json``): how its images
    were read, the scores on the classes shared with the model, and the recall of each (blank where not shared)."""
    rows = []
    for path in paths:
        metrics = read_json(path)
        if not isinstance(metrics, dict) or not {"per_class", "accuracy", "macro_f1", "n_images"} <= set(metrics):
            raise FerflowError(f"{path}: not the metrics of ferflow evaluate")
        rows.append(
            {
                "model": path.stem,
                "dataset": path.parent.name,
                "detect": bool(metrics.get("detect")),
                "ids": metrics.get("ids", "all"),
                "images": int(metrics["n_images"]),
                "no_face": int(metrics.get("no_face", 0)),
                "accuracy": float(metrics["accuracy"]),
                "mean_recall": mean_recall(metrics),
                "macro_f1": float(metrics["macro_f1"]),
                **{f"recall_{name}": float(s["recall"]) for name, s in metrics["per_class"].items()},
            }
        )
    frame = pd.DataFrame(rows)
    return frame[[c for c in CROSSDATA_COLUMNS if c in frame.columns]]


def seed_table(runs: list[Path]) -> pd.DataFrame:
    """One row per run, in the order given."""
    return pd.DataFrame([run_record(run) for run in runs])


def aggregate(seeds: pd.DataFrame, scores: list[str], columns: list[str]) -> pd.DataFrame:
    """One row per (model, experiment), in order of appearance: seed and collapse counts, the largest epoch
    count, parameters, and each score's mean and sample standard deviation over the seeds (NaN for one seed)."""
    groups = seeds.groupby(["model", "experiment"], sort=False)
    extra = {c: (c, "first") for c in ("mmacs", "latency_ms") if c in columns}
    frame = groups.agg(
        seeds=("seed", "size"),
        collapsed=("collapsed", "sum"),
        epochs=("epochs", "max"),
        parameters=("parameters", "first"),
        **extra,
    ).reset_index()
    for score in scores:
        values = groups[score].agg(["mean", "std"]).reset_index(drop=True)
        frame[f"{score}_mean"], frame[f"{score}_std"] = values["mean"], values["std"]
    order = [c for c in columns if c not in scores]
    return frame[order + [f"{s}_{k}" for s in scores for k in ("mean", "std")]]


def sweep_tables(seeds: pd.DataFrame, baseline: list[str]) -> dict[str, pd.DataFrame]:
    """``{model: table}`` for every architecture with sweep runs, baseline rows appended to the others."""
    sweep = aggregate(seeds[seeds["experiment"] != FINAL], SWEEP_SCORES, SWEEP_COLUMNS)
    base = sweep[sweep["model"].isin(baseline)]
    tables = {}
    for model in dict.fromkeys(sweep["model"]):
        own = sweep[sweep["model"] == model]
        tables[model] = own if model in baseline else pd.concat([own, base], ignore_index=True)
    return {m: t.reset_index(drop=True) for m, t in tables.items()}


def finals_table(
    seeds: pd.DataFrame, baseline: list[str], runs: list[Path], latency: list[Path] | None = None
) -> pd.DataFrame:
    """Every final, then every experiment of the baseline architectures, with their compute and latency."""
    rows = seeds[(seeds["experiment"] == FINAL) | seeds["model"].isin(baseline)]
    rows = pd.concat([rows[rows["experiment"] == FINAL], rows[rows["experiment"] != FINAL]])
    first_run: dict[tuple[str, str], Path] = {}
    for run in runs:
        first_run.setdefault((run_of(run).model, run_of(run).experiment), run)
    keys = list(zip(rows["model"], rows["experiment"]))
    compute = {key: mmacs(first_run[key]) for key in dict.fromkeys(keys)}
    deployed = dict(map(batch1_latency, latency or []))
    rows = rows.assign(
        mmacs=[compute[key] for key in keys], latency_ms=[deployed.get(m) if e == FINAL else None for m, e in keys]
    )
    finals = aggregate(rows, FINALS_SCORES, FINALS_COLUMNS)
    unscored = [  # the classes no final's test data holds (contempt outside FER+)
        f"{c[: -len('_mean')]}_{k}"
        for c in finals.columns
        if c.startswith("test_f1_") and c.endswith("_mean") and finals[c].isna().all()
        for k in ("mean", "std")
    ]
    return finals.drop(columns=unscored)


def mmacs(run: Path) -> float:
    """Millions of multiply-accumulates of one 48×48 image through the model of a run's best.pt (torch is
    imported here only: the report, which shares this module, needs none)."""
    from ferflow import checkpoint
    from ferflow.models.listing import multiply_accumulates

    model, ckpt = checkpoint.load_model(run / RUN_FILES["best"])
    return multiply_accumulates(model, int(ckpt["arch_kwargs"].get("in_channels", 3))) / 1e6


def batch1_latency(path: Path) -> tuple[str, float]:
    """(architecture, median ms of ONNX Runtime fp32 at batch 1) of a latency.json."""
    doc = read_json(path)
    found = [r["median_ms"] for r in doc.get("rows", []) if r["engine"] == LATENCY_ENGINE and r["batch_size"] == 1]
    if not found:
        raise FerflowError(f"{path}: no {LATENCY_ENGINE} batch-1 row (latency_batch_sizes without 1?)")
    return str(doc["arch"]), float(found[0])


def percent(value: float, spread: float = float("nan")) -> str:
    """A score or share in [0, 1] as a percentage with one decimal, and its spread when it has one:
    ``89.3 ± 3.2`` (the tables and the report write every score so)."""
    return f"{100 * value:.1f}" + ("" if pd.isna(spread) else f" ± {100 * spread:.1f}")


def to_markdown(frame: pd.DataFrame, title: str) -> str:
    """A titled pipe table: scores in % as ``mean ± std`` (:func:`percent`), parameter counts with thousands
    separators, ``k of n`` collapsed seeds."""
    names = headers()
    columns = [c for c in frame.columns if not c.endswith("_std")]

    def cell(row: pd.Series, column: str) -> str:
        value = row[column]
        if column == "collapsed":
            return f"{int(value)} of {int(row['seeds'])}" if "seeds" in row else ("yes" if value else "no")
        if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
            return "–"
        if column == "parameters":
            return f"{int(value):,}"
        if column in NUMBER_FORMATS:
            return NUMBER_FORMATS[column].format(value)
        if column.endswith("_mean"):
            return percent(value, row[column[: -len("_mean")] + "_std"])
        if isinstance(value, float):
            return percent(value)
        return str(value)

    lines = [
        f"## {title}",
        "",
        "| " + " | ".join(names[c] for c in columns) + " |",
        "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(frame[c]) else "---" for c in columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(row, c) for c in columns) + " |" for _, row in frame.iterrows()]
    return "\n".join(lines) + "\n"


def write_table(out_dir: Path, name: str, frame: pd.DataFrame, title: str) -> None:
    """``<name>.csv`` (machine-readable columns) and ``<name>.md`` (titled, formatted), atomically."""
    with atomic_path(out_dir / f"{name}.csv") as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    write_text(out_dir / f"{name}.md", to_markdown(frame, title))
    print(f"wrote {out_dir / name}.csv and .md ({len(frame)} rows)")


def run(args: argparse.Namespace) -> int:
    seeds = seed_table(args.runs)
    tables = sweep_tables(seeds, args.baseline)
    finals = finals_table(seeds, args.baseline, args.runs, args.latency)
    n = seeds.groupby(["model", "experiment"]).size()
    seeds_n = f"{n.min()}" if n.min() == n.max() else f"{n.min()}–{n.max()}"
    over = f"in %, mean ± std over {seeds_n} seeds"
    for model, frame in tables.items():
        write_table(
            args.out,
            f"sweep_{model}",
            frame,
            f"{model} sweep: validation scores at the best epoch (by val macro-F1) and test scores, {over}",
        )
    write_table(args.out, "finals", finals, f"Final models: validation and test scores, {over}")
    title = "Every run: scores (%), dead embedding units and collapse per seed"
    write_table(args.out, "seeds", seeds[list(SEED_COLUMNS)], title)
    if args.crossdata:
        title = "Faces from elsewhere: each final's deployed seed, scores (%) on the classes it shares with the data"
        write_table(args.out, "crossdata", crossdata_table(args.crossdata), title)
    return 0
