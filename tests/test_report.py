"""ferflow tables and ferflow report: table contents match the histories and metrics; the report is one
self-contained HTML file embedding every figure."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from fake_results import write_data, write_deploy, write_run
from ferflow import cli
from ferflow.report import embed_figure

STAGES = ["raw", "affectnet", "balanced", "rgb"]
RUNS = [("resnet", "adam_a", 1, 481551), ("resnet", "adam_b", 2, 481551), ("resnet", "final", 3, 481551),
        ("vgg16", "baseline", 4, 14_800_000)]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results tree as the pipeline leaves it before the report rule: runs, figures, tables."""
    root = tmp_path_factory.mktemp("results") / "results" / "fake"
    write_data(root, STAGES, "png")
    for model, experiment, seed, parameters in RUNS:
        run = write_run(root, model, experiment, seed, parameters)
        figures = run / "figures"
        assert cli.main(["plot-run", "--history", str(run / "history.csv"), "--metrics", str(run / "metrics.json"),
                         "--tsne", str(run / "tsne.csv"), "--curves", str(figures / "curves.png"),
                         "--per-class", str(figures / "per_class.png"), "--confusion", str(figures / "confusion.png"),
                         "--tsne-figure", str(figures / "tsne.png"), "--dpi", "30"]) == 0
    write_deploy(root / "runs" / "resnet" / "final")
    for model, sweep in (("resnet", ["adam_a", "adam_b"]), ("vgg16", ["baseline"])):
        assert cli.main(["plot-study", "sweep", "--out", str(root / "figures" / f"sweep_{model}.png"), "--dpi", "30",
                         *(str(root / "runs" / model / e / "history.csv") for e in sweep)]) == 0
    assert cli.main(["plot-study", "params", "--out", str(root / "figures" / "params_vs_accuracy.png"), "--dpi", "30",
                     *(str(root / "runs" / m / e / "metrics.json") for m, e, _, _ in RUNS)]) == 0
    assert cli.main(["tables", "--out", str(root / "tables"),
                     "--histories", *(str(root / "runs" / m / e / "history.csv") for m, e, _, _ in RUNS if e != "final"),
                     "--metrics", str(root / "runs" / "resnet" / "final" / "metrics.json"),
                     str(root / "runs" / "vgg16" / "baseline" / "metrics.json"), "--baseline", "vgg16"]) == 0
    return root


def report_args(root: Path, out: Path) -> list[str]:
    return ["report", "--results", str(root), "--out", str(out), "--format", "png", "--stages", *STAGES,
            "--sweeps", "resnet", "vgg16", "--runs", *(f"{m}/{e}" for m, e, _, _ in RUNS), "--deploy", "resnet/final"]


def test_sweep_tables_match_histories(results: Path) -> None:
    table = pd.read_csv(results / "tables" / "sweep_resnet.csv")
    assert list(zip(table["model"], table["experiment"])) == [("resnet", "adam_a"), ("resnet", "adam_b"), ("vgg16", "baseline")]
    for _, row in table.iterrows():
        history = pd.read_csv(results / "runs" / row["model"] / row["experiment"] / "history.csv")
        best = history.loc[history["val_macro_f1"].idxmax()]
        assert row["best_epoch"] == best["epoch"] and row["epochs"] == len(history)
        for column in ("val_acc", "val_macro_f1", "val_f1_happy", "val_f1_disgust"):
            assert row[column] == pytest.approx(best[column], abs=1e-5), column
    assert list(pd.read_csv(results / "tables" / "sweep_vgg16.csv")["experiment"]) == ["baseline"]
    markdown = (results / "tables" / "sweep_resnet.md").read_text()
    assert f"| {table.loc[0, 'val_acc']:.4f} |" in markdown and markdown.count("\n| ") == 4  # header + 3 rows


def test_finals_table_matches_metrics(results: Path) -> None:
    finals = pd.read_csv(results / "tables" / "finals.csv")
    assert list(zip(finals["model"], finals["experiment"])) == [("resnet", "final"), ("vgg16", "baseline")]
    for _, row in finals.iterrows():
        metrics = json.loads((results / "runs" / row["model"] / row["experiment"] / "metrics.json").read_text())
        assert row["parameters"] == metrics["parameters"]
        assert row["test_acc"] == pytest.approx(metrics["accuracy"], abs=1e-5)
        assert row["test_macro_f1"] == pytest.approx(metrics["macro_f1"], abs=1e-5)
        assert row["test_f1_disgust"] == pytest.approx(metrics["per_class"]["disgust"]["f1"], abs=1e-5)
    assert "| 14,800,000 |" in (results / "tables" / "finals.md").read_text()


def test_report_is_one_self_contained_file(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "report" / "index.html"
    assert cli.main(report_args(results, out)) == 0
    assert [p.name for p in out.parent.iterdir()] == ["index.html"]
    document = out.read_text()
    links = re.findall(r'\b(?:src|href|data)\s*=\s*["\']([^"\']*)', document)
    assert links and all(link.startswith(("data:", "#")) for link in links), [l[:40] for l in links if not l.startswith(("data:", "#"))]
    assert "url(" not in document and "@import" not in document
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', document)
    assert len(images) == 3 + 1 + 2 + 4 * len(RUNS)  # data, params, sweeps, per-run figures
    assert all(base64.b64decode(image)[:8] == b"\x89PNG\r\n\x1a\n" for image in images)
    finals = pd.read_csv(results / "tables" / "finals.csv")
    assert f"{finals.loc[0, 'test_acc']:.4f}" in document and "14,800,000" in document
    for model, experiment, _, _ in RUNS:
        assert f'id="run-{model}-{experiment}"' in document
    assert "onnxruntime" in document and "predictions match" in document
    summary = json.loads((results / "data" / "balanced" / "summary.json").read_text())
    assert f"<td>{summary['train']['disgust']}</td>" in document


def test_svg_figures_are_embedded(tmp_path: Path) -> None:
    from ferflow.plotting import new_figure, save_figure

    fig, ax = new_figure(2, 2)
    ax.plot([0, 1], [0, 1])
    save_figure(fig, tmp_path / "f.svg", dpi=50)
    html = embed_figure(tmp_path / "f.svg", "a <caption>")
    encoded = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(encoded) == (tmp_path / "f.svg").read_bytes()
    assert "a &lt;caption&gt;" in html


def test_missing_input_is_named(results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "index.html"
    args = report_args(results, out)
    args[args.index("--runs") + 1] = "resnet/never_ran"
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("ferflow report: error: ") and "never_ran" in err and not out.exists()
