"""ferflow tables and ferflow report: table contents match the histories and metrics; the report is one
self-contained HTML file embedding every figure."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fake_results import write_data, write_deploy, write_run
from ferflow import checkpoint, cli
from ferflow.classes import CLASS_NAMES
from ferflow.models import build
from ferflow.models.listing import multiply_accumulates
from ferflow.report.html import embed_figure

STAGES = ["raw", "affectnet", "balanced", "rgb"]
# (model, experiment, seeds, parameters); seed 2 of resnet/final collapsed (predicts "happy" for all of val)
EXPERIMENTS = [
    ("resnet", "adam_a", (1, 2), 481551),
    ("resnet", "adam_b", (3, 4), 481551),
    ("resnet", "final", (1, 2), 481551),
    ("vgg16", "baseline", (5,), 14_800_000),
]
RUNS = [(m, e, s, p) for m, e, seeds, p in EXPERIMENTS for s in seeds]


def run_dir(root: Path, model: str, experiment: str, seed: int) -> Path:
    return root / "runs" / model / experiment / f"seed{seed}"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results tree as the pipeline leaves it before the report rule: runs, figures, tables, deployment."""
    root = tmp_path_factory.mktemp("results") / "results" / "fake"
    write_data(root, STAGES, "png")
    for model, experiment, seed, parameters in RUNS:
        run = write_run(root, model, experiment, seed, parameters, collapsed=(experiment, seed) == ("final", 2))
        checkpoint.save_untrained(run / "best.pt", model, in_channels=3, num_classes=7, dropout=0.0)
        figures = run / "figures"
        assert (
            cli.main(
                [
                    "plot-run",
                    "--history",
                    str(run / "history.csv"),
                    "--metrics",
                    str(run / "metrics.json"),
                    "--tsne",
                    str(run / "tsne.csv"),
                    "--curves",
                    str(figures / "curves.png"),
                    "--per-class",
                    str(figures / "per_class.png"),
                    "--confusion",
                    str(figures / "confusion.png"),
                    "--tsne-figure",
                    str(figures / "tsne.png"),
                    "--settings",
                    '{"dpi": 30}',
                ]
            )
            == 0
        )
    deployed = root / "runs" / "resnet" / "final"
    assert (
        cli.main(
            [
                "deploy-seed",
                "--runs",
                *(str(run_dir(root, "resnet", "final", s)) for s in (1, 2)),
                "--out",
                str(deployed / "best.pt"),
                "--record",
                str(deployed / "deployed.json"),
            ]
        )
        == 0
    )
    write_deploy(deployed)
    for model, sweep in (("resnet", ["adam_a", "adam_b"]), ("vgg16", ["baseline"])):
        assert (
            cli.main(
                [
                    "plot-study",
                    "sweep",
                    "--out",
                    str(root / "figures" / f"sweep_{model}.png"),
                    "--settings",
                    '{"dpi": 30}',
                    *(str(run_dir(root, m, e, s) / "history.csv") for m, e, s, _ in RUNS if e in sweep),
                ]
            )
            == 0
        )
    assert (
        cli.main(
            [
                "plot-study",
                "params",
                "--out",
                str(root / "figures" / "params_vs_accuracy.png"),
                "--settings",
                '{"dpi": 30}',
                *(str(run_dir(root, m, e, s) / "metrics.json") for m, e, s, _ in RUNS),
            ]
        )
        == 0
    )
    assert (
        cli.main(
            [
                "plot-study",
                "time",
                "--out",
                str(root / "figures" / "time_to_accuracy.png"),
                "--settings",
                '{"dpi": 30}',
                *(str(run_dir(root, m, e, s) / "history.csv") for m, e, s, _ in RUNS),
            ]
        )
        == 0
    )
    assert (
        cli.main(
            [
                "tables",
                "--out",
                str(root / "tables"),
                "--baseline",
                "vgg16",
                "--latency",
                str(deployed / "latency.json"),
                "--runs",
                *(str(run_dir(root, m, e, s)) for m, e, s, _ in RUNS),
            ]
        )
        == 0
    )
    return root


def report_args(root: Path, out: Path) -> list[str]:
    return [
        "report",
        "--results",
        str(root),
        "--out",
        str(out),
        "--settings",
        '{"format": "png"}',
        "--stages",
        *STAGES,
        "--sweeps",
        "resnet",
        "vgg16",
        "--experiments",
        *(f"{m}/{e}" for m, e, _, _ in EXPERIMENTS),
        "--deploy",
        "resnet",
    ]


def best_rows(root: Path, model: str, experiment: str) -> pd.DataFrame:
    """Each seed's history row at its best val macro-F1."""
    rows = []
    for m, e, seed, _ in RUNS:
        if (m, e) == (model, experiment):
            history = pd.read_csv(run_dir(root, m, e, seed) / "history.csv")
            rows.append(history.loc[history["val_macro_f1"].idxmax()])
    return pd.DataFrame(rows)


def test_sweep_tables_give_mean_and_std_over_seeds(results: Path) -> None:
    table = pd.read_csv(results / "tables" / "sweep_resnet.csv")
    rows = list(zip(table["model"], table["experiment"]))
    assert rows == [("resnet", "adam_a"), ("resnet", "adam_b"), ("vgg16", "baseline")]
    assert list(table["seeds"]) == [2, 2, 1] and list(table["collapsed"]) == [0, 0, 0]
    for _, row in table.iterrows():
        best = best_rows(results, row["model"], row["experiment"])
        for column in ("val_acc", "val_macro_f1", "val_f1_happy", "val_f1_disgust"):
            assert row[f"{column}_mean"] == pytest.approx(best[column].mean(), abs=1e-5), column
            if len(best) > 1:
                assert row[f"{column}_std"] == pytest.approx(best[column].std(ddof=1), abs=1e-5), column
            else:
                assert pd.isna(row[f"{column}_std"])
    a = table.loc[0]
    accuracies = [
        json.loads((run_dir(results, "resnet", "adam_a", s) / "metrics.json").read_text())["accuracy"] for s in (1, 2)
    ]
    assert a["test_acc_mean"] == pytest.approx(np.mean(accuracies), abs=1e-5)
    assert a["test_acc_std"] == pytest.approx(np.std(accuracies, ddof=1), abs=1e-5)
    assert list(pd.read_csv(results / "tables" / "sweep_vgg16.csv")["experiment"]) == ["baseline"]
    markdown = (results / "tables" / "sweep_resnet.md").read_text()
    assert f"| {100 * a['val_acc_mean']:.1f} ± {100 * a['val_acc_std']:.1f} |" in markdown
    assert markdown.count("\n| ") == 4 and "| 0 of 2 |" in markdown  # header + 3 rows


def test_finals_table_counts_collapsed_seeds(results: Path) -> None:
    finals = pd.read_csv(results / "tables" / "finals.csv")
    assert list(zip(finals["model"], finals["experiment"])) == [("resnet", "final"), ("vgg16", "baseline")]
    assert list(finals["collapsed"]) == [1, 0] and list(finals["seeds"]) == [2, 1]
    for _, row in finals.iterrows():
        seeds = [s for m, e, s, _ in RUNS if (m, e) == (row["model"], row["experiment"])]
        metrics = [
            json.loads((run_dir(results, row["model"], row["experiment"], s) / "metrics.json").read_text())
            for s in seeds
        ]
        assert row["parameters"] == metrics[0]["parameters"]
        assert row["test_macro_f1_mean"] == pytest.approx(np.mean([m["macro_f1"] for m in metrics]), abs=1e-5)
        disgust = [m["per_class"]["disgust"]["f1"] for m in metrics]
        assert row["test_f1_disgust_mean"] == pytest.approx(np.mean(disgust), abs=1e-5)
    macs = [multiply_accumulates(build(m, in_channels=3, num_classes=7), 3) / 1e6 for m in finals["model"]]
    assert finals["mmacs"].tolist() == pytest.approx(macs) and 30 < macs[0] < 35  # the study ResNet: 32.6
    assert finals["latency_ms"].tolist()[0] == 5.0 and pd.isna(finals["latency_ms"][1])  # ONNX Runtime, batch 1
    markdown = (results / "tables" / "finals.md").read_text()
    assert "| 14,800,000 |" in markdown and "| 1 of 2 |" in markdown
    assert "| MMACs | Batch-1 CPU ms |" in markdown and f"| {macs[0]:.1f} | 5.000 |" in markdown


def test_seed_table_has_one_row_per_run_and_names_the_collapse(results: Path) -> None:
    seeds = pd.read_csv(results / "tables" / "seeds.csv")
    assert list(zip(seeds["model"], seeds["experiment"], seeds["seed"])) == [(m, e, s) for m, e, s, _ in RUNS]
    collapsed = seeds[seeds["collapsed"]]
    assert list(zip(collapsed["experiment"], collapsed["seed"])) == [("final", 2)]
    assert collapsed.iloc[0]["collapse"] == "predicts happy for 100% of val" and collapsed.iloc[0]["val_top_share"] == 1
    healthy = seeds[~seeds["collapsed"]]
    assert (healthy["val_top_share"] < 0.95).all() and (healthy["val_dead_units"] < 0.9).all()


def test_report_is_one_self_contained_file(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "report" / "index.html"
    assert cli.main(report_args(results, out)) == 0
    assert [p.name for p in out.parent.iterdir()] == ["index.html"]
    document = out.read_text()
    links = re.findall(r'\b(?:src|href|data)\s*=\s*["\']([^"\']*)', document)
    outside = [link[:40] for link in links if not link.startswith(("data:", "#"))]
    assert links and not outside, outside
    assert "url(" not in document and "@import" not in document
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', document)
    # data, params and time to accuracy, sweeps, one seed's figures per experiment
    assert len(images) == 3 + 2 + 2 + 4 * len(EXPERIMENTS)
    assert all(base64.b64decode(image)[:8] == b"\x89PNG\r\n\x1a\n" for image in images)
    finals = pd.read_csv(results / "tables" / "finals.csv")
    assert f"{100 * finals.loc[0, 'test_acc_mean']:.1f} ± {100 * finals.loc[0, 'test_acc_std']:.1f}" in document
    assert "14,800,000" in document
    seeds = pd.read_csv(results / "tables" / "seeds.csv")
    final = seeds[seeds["experiment"] == "final"]
    hover = " · ".join(f"seed {s}: {100 * v:.1f}" for s, v in zip(final["seed"], final["test_acc"]))
    assert f'title="{hover}"' in document
    assert "resnet/final: 1 of 2 seeds collapsed" in document
    for model, experiment, _, _ in EXPERIMENTS:
        assert f'id="run-{model}-{experiment}"' in document
    # the final's figures are those of its deployed seed (seed 1: seed 2 collapsed)
    assert "Deployed: seed 1 of final" in document and "Figures of seed 1: best val macro-F1" in document
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
    args[args.index("--deploy") + 1] = "mobilenetv2"
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("ferflow report: error: ") and "mobilenetv2/final/deployed.json" in err and not out.exists()


def test_finals_fit_the_page_with_the_per_class_scores_in_a_table_of_their_own(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "index.html"
    assert cli.main(report_args(results, out)) == 0
    document = out.read_text()
    finals = document.split("<h3>Final models</h3>", 1)[1]
    tables = re.findall(r"<table>.*?</table>", finals)[:2]
    overall, per_class = (re.findall(r"<th>(.*?)</th>", table) for table in tables)
    # 18 columns in one table wrapped "89.8 ± 5.7" onto three lines at 1400 px: now 11, and the 7 classes apart
    assert len(overall) <= 12 and not [h for h in overall if h.startswith("F1 ")]
    assert overall[-2:] == ["Test accuracy", "Test macro-F1"]
    assert per_class == ["Model", "Experiment", *(f"F1 {name}" for name in CLASS_NAMES)]
    frame = pd.read_csv(results / "tables" / "finals.csv")
    disgust = f"{100 * frame.loc[0, 'test_f1_disgust_mean']:.1f} ± {100 * frame.loc[0, 'test_f1_disgust_std']:.1f}"
    assert disgust in finals.split("F1 disgust", 1)[1]
    # every table sits in a box that scrolls sideways when it is wider than the page, and no number wraps
    assert document.count('<div class="table"><table>') == document.count("<table>") > 0
    assert "td:not(.text) { white-space: nowrap; }" in document
