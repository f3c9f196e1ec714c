"""Small result files in the pipeline's layout (histories, metrics, t-SNE, summaries, data figures), for the
figure, table and report tests: everything downstream of training without training anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ferflow.classes import CLASS_NAMES
from ferflow.metrics import compute_metrics
from ferflow.plotting import new_figure, save_figure
from ferflow.storage import write_json
from ferflow.tsne import write_coords


def history(epochs: int, seed: int) -> pd.DataFrame:
    """A history.csv frame with every contract column; val_macro_f1 peaks at a seeded epoch."""
    rng = np.random.default_rng(seed)
    epoch = np.arange(1, epochs + 1)
    frame = pd.DataFrame(
        {
            "epoch": epoch,
            "train_loss": 2.0 / epoch,
            "train_acc": 0.2 + 0.05 * epoch,
            "val_loss": 2.1 / epoch + 0.01 * epoch,
            "val_acc": rng.uniform(0.2, 0.6, epochs),
            "val_macro_f1": rng.uniform(0.1, 0.5, epochs),
            "lr": 1e-3,
            "epoch_seconds": 1.5,
            "val_dead_units": rng.uniform(0.0, 0.5, epochs),
        }
    )
    for name in CLASS_NAMES:
        for score in ("precision", "recall", "f1"):
            frame[f"val_{score}_{name}"] = rng.uniform(0, 1, epochs)
    return frame


def metrics(seed: int, arch: str, parameters: int, n: int = 140, collapsed: bool = False) -> dict:
    """A metrics.json dict from seeded labels and ~60 % correct predictions (all "happy" when collapsed)."""
    rng = np.random.default_rng(seed)
    truth = np.arange(n) % len(CLASS_NAMES)
    predicted = np.where(rng.random(n) < 0.6, truth, rng.integers(0, len(CLASS_NAMES), n))
    if collapsed:
        predicted = np.full(n, CLASS_NAMES.index("happy"))
    return {
        **compute_metrics(truth, predicted),
        "arch": arch,
        "parameters": parameters,
        "epoch": 2,
        "checkpoint": "best.pt",
        "data": "test.npz",
    }


def write_run(
    results: Path, model: str, experiment: str, seed: int, parameters: int, epochs: int = 4, collapsed: bool = False
) -> Path:
    """history.csv, metrics.json, val_metrics.json and tsne.csv of one run (``runs/<m>/<e>/seed<seed>``);
    a collapsed run predicts "happy" for every val image. Returns the run folder."""
    run = results / "runs" / model / experiment / f"seed{seed}"
    run.mkdir(parents=True, exist_ok=True)
    history(epochs, seed).to_csv(run / "history.csv", index=False)
    write_json(run / "metrics.json", metrics(seed, model, parameters))
    write_json(run / "val_metrics.json", metrics(seed + 1000, model, parameters, collapsed=collapsed))
    rng = np.random.default_rng(seed)
    labels = np.arange(60) % len(CLASS_NAMES)
    write_coords(run / "tsne.csv", rng.normal(size=(60, 2)) + labels[:, None], labels, np.arange(60))
    return run


def write_data(results: Path, stages: list[str], fmt: str) -> None:
    """summary.json of each stage and the three data figures (stand-ins for the data stages' outputs)."""
    for k, stage in enumerate(stages):
        write_json(
            results / "data" / stage / "summary.json",
            {
                split: {c: 10 * (i + 1) + (40 * k if split == "train" else 0) for i, c in enumerate(CLASS_NAMES)}
                for split in ("train", "val", "test")
            },
        )
    for name in ("samples", "distribution", "tsne_raw"):
        fig, ax = new_figure(3, 2)
        ax.plot([0, 1], [1, 0])
        save_figure(fig, results / "figures" / "data" / f"{name}.{fmt}", dpi=40)


def write_deploy(deployed: Path) -> None:
    """onnx_check.json and latency.json of a deployed final (runs/<model>/final/)."""
    write_json(deployed / "onnx_check.json", {"max_abs_diff": 2.5e-6, "predictions_match": True, "n_images": 64})
    write_json(
        deployed / "latency.json",
        {
            "threads": 2,
            "arch": deployed.parent.name,
            "rows": [
                {
                    "engine": engine,
                    "batch_size": b,
                    "images_per_s": 100.0 * b * (2 if engine == "onnxruntime" else 1),
                    "ms_per_batch": 10.0 / (2 if engine == "onnxruntime" else 1),
                    "median_ms": 10.0 / (2 if engine == "onnxruntime" else 1),
                }
                for engine in ("pytorch", "onnxruntime")
                for b in (1, 8)
            ],
        },
    )
