"""t-SNE helper, the data figures, and that figure settings never recompute the t-SNE."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import bin_path
from datastage import make_split, make_stage
from ferflow import cli
from ferflow.plotting import new_figure, save_figure
from ferflow.tsne import embed_2d, read_coords, stratified_subsample, write_coords

PNG = b"\x89PNG\r\n\x1a\n"
DATA_RULES = {"affectnet", "balance", "rgb", "tsne_raw", "plot_samples", "plot_distribution", "plot_tsne_raw"}


def _clusters(n_per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(7), n_per_class)
    features = rng.normal(size=(len(labels), 16)) + 10.0 * np.eye(7, 16)[labels]
    return features, labels


def test_stratified_subsample_keeps_class_proportions() -> None:
    labels = np.repeat(np.arange(7), [100, 10, 50, 200, 80, 60, 40])
    index = stratified_subsample(labels, 108, seed=1)
    assert len(index) == 108 and np.all(np.diff(index) > 0)
    counts = np.bincount(labels[index], minlength=7)
    assert counts.tolist() == [20, 2, 10, 40, 16, 12, 8]
    assert np.array_equal(index, stratified_subsample(labels, 108, seed=1))
    assert np.array_equal(stratified_subsample(labels, 10_000, seed=1), np.arange(len(labels)))


def test_embed_2d_is_seeded_and_separates_clusters() -> None:
    features, labels = _clusters(15)
    coords, lab, index = embed_2d(
        features, labels, pca_components=10, perplexity=10, max_iter=500, max_points=70, seed=3
    )
    assert coords.shape == (70, 2) and np.array_equal(lab, labels[index])
    again, _, _ = embed_2d(features, labels, 10, 10, 500, 70, 3)
    assert np.array_equal(coords, again)
    # well-separated clusters stay together: nearest neighbour shares the class
    dist = np.linalg.norm(coords[:, None] - coords[None], axis=-1) + np.eye(len(coords)) * 1e9
    assert (lab[dist.argmin(1)] == lab).mean() > 0.9


def test_coords_round_trip(tmp_path: Path) -> None:
    coords = np.array([[0.5, -1.25], [3.0, 4.0]], np.float32)
    write_coords(tmp_path / "c.csv", coords, np.array([6, 0]), np.array([4, 9]))
    assert (tmp_path / "c.csv").read_text().splitlines()[1] == "4,6,surprise,0.50000,-1.25000"
    back, labels = read_coords(tmp_path / "c.csv")
    assert np.allclose(back, coords) and labels.tolist() == [6, 0]


def test_save_figure_is_atomic_and_refuses_unknown_formats(tmp_path: Path) -> None:
    fig, _ = new_figure(2, 2)
    with pytest.raises(ValueError, match="unsupported figure format"):
        save_figure(fig, tmp_path / "f.gif", 50)
    assert list(tmp_path.iterdir()) == []
    fig, _ = new_figure(2, 2)
    save_figure(fig, tmp_path / "f.svg", 50)
    assert (tmp_path / "f.svg").read_text().lstrip().startswith("<?xml")


def test_data_figure_commands(tmp_path: Path) -> None:
    make_stage(tmp_path / "raw", {0: 5, 1: 1, 2: 4, 3: 6, 4: 3, 5: 3, 6: 4})
    make_stage(tmp_path / "balanced", {label: 6 for label in range(7)})
    assert (
        cli.main(
            [
                "plot-data",
                "samples",
                "--split",
                str(tmp_path / "raw" / "train.npz"),
                "--settings",
                '{"samples_per_class": 3, "dpi": 40}',
                "--out",
                str(tmp_path / "samples.png"),
            ]
        )
        == 0
    )
    assert (
        cli.main(
            [
                "plot-data",
                "distribution",
                "--summary",
                f"raw={tmp_path / 'raw' / 'summary.json'}",
                "--summary",
                f"balanced={tmp_path / 'balanced' / 'summary.json'}",
                "--out",
                str(tmp_path / "dist.pdf"),
                "--settings",
                '{"dpi": 40}',
            ]
        )
        == 0
    )
    assert (
        cli.main(
            [
                "tsne-raw",
                "--split",
                str(tmp_path / "raw" / "test.npz"),
                "--out",
                str(tmp_path / "t.csv"),
                "--settings",
                '{"pca_components": 5, "perplexity": 3, "max_iter": 250, "max_points": 10}',
            ]
        )
        == 0
    )
    coords, labels = read_coords(tmp_path / "t.csv")
    assert coords.shape == (10, 2) and sorted(np.bincount(labels, minlength=7).tolist()) == [1, 1, 1, 1, 2, 2, 2]
    assert (
        cli.main(
            [
                "plot-data",
                "tsne",
                "--coords",
                str(tmp_path / "t.csv"),
                "--out",
                str(tmp_path / "tsne.png"),
                "--settings",
                '{"dpi": 40}',
            ]
        )
        == 0
    )
    assert (tmp_path / "samples.png").read_bytes().startswith(PNG)
    assert (tmp_path / "tsne.png").read_bytes().startswith(PNG)
    assert (tmp_path / "dist.pdf").read_bytes().startswith(b"%PDF")


def test_distribution_rejects_a_file_that_is_not_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "s.json").write_text(json.dumps({"train": {}}))
    assert (
        cli.main(
            ["plot-data", "distribution", "--summary", f"x={tmp_path / 's.json'}", "--out", str(tmp_path / "d.png")]
        )
        == 1
    )
    assert "not a data stage summary" in capsys.readouterr().err
    assert not (tmp_path / "d.png").exists()


def test_samples_from_an_rgb_split(tmp_path: Path) -> None:
    from ferflow.faces import to_rgb
    from ferflow.storage import save_split

    save_split(tmp_path / "rgb.npz", to_rgb(make_split({0: 2, 3: 2}, "x", 0)))
    assert (
        cli.main(
            [
                "plot-data",
                "samples",
                "--split",
                str(tmp_path / "rgb.npz"),
                "--settings",
                '{"samples_per_class": 2, "dpi": 30}',
                "--out",
                str(tmp_path / "s.png"),
            ]
        )
        == 0
    )


def _planned_jobs(workdir: Path, overlay: Path) -> set[str]:
    """Rules a dry run would execute with ``overlay`` on top of the tiny preset."""
    proc = subprocess.run(
        [bin_path("snakemake"), "-n", "--configfile", "workflow/presets/tiny.yaml", str(overlay)],
        cwd=workdir,
        text=True,
        capture_output=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    if "Job stats:" not in proc.stdout:
        return set()
    table = proc.stdout.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", table, re.M)} - {"total"}


def test_a_setting_reruns_only_the_rules_that_use_it(tiny_run: Path, tmp_path: Path) -> None:
    root = tiny_run / "results" / "tiny"
    for name in ("samples", "distribution", "tsne_raw"):
        assert (root / "figures" / "data" / f"{name}.png").read_bytes().startswith(PNG)
    overlays = {
        "figures: {dpi: 61}": {"plot_samples", "plot_distribution", "plot_tsne_raw"},
        "tsne: {pca_components: 9}": {"tsne_raw", "plot_tsne_raw"},
        "augment: {min_per_class: 60}": {"balance", "rgb", "plot_distribution"},
    }
    for text, expected in overlays.items():
        overlay = tmp_path / "overlay.yaml"
        overlay.write_text(text + "\n")
        assert _planned_jobs(tiny_run, overlay) & DATA_RULES == expected, text
