"""ferflow plot-run / plot-study: figures render from small result files; bad input is refused."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from fake_results import write_run
from ferflow import cli

RUN_FIGURES = ("curves", "per_class", "confusion", "tsne")


def plot_run(run: Path, out: Path, fmt: str, dpi: int) -> int:
    return cli.main([
        "plot-run", "--history", str(run / "history.csv"), "--metrics", str(run / "metrics.json"),
        "--tsne", str(run / "tsne.csv"), "--curves", str(out / f"curves.{fmt}"),
        "--per-class", str(out / f"per_class.{fmt}"), "--confusion", str(out / f"confusion.{fmt}"),
        "--tsne-figure", str(out / f"tsne.{fmt}"), "--dpi", str(dpi),
    ])


def test_run_figures_png_follow_dpi(tmp_path: Path) -> None:
    run = write_run(tmp_path / "results", "resnet", "adam", seed=1, parameters=481551)
    assert plot_run(run, tmp_path / "low", "png", 40) == 0
    assert plot_run(run, tmp_path / "high", "png", 80) == 0
    for name in RUN_FIGURES:
        low, high = Image.open(tmp_path / "low" / f"{name}.png"), Image.open(tmp_path / "high" / f"{name}.png")
        assert low.format == "PNG" and low.width > 100
        assert high.width == pytest.approx(2 * low.width, rel=0.05), name
    assert sorted(p.name for p in (tmp_path / "low").iterdir()) == sorted(f"{n}.png" for n in RUN_FIGURES)


def test_run_figures_svg(tmp_path: Path) -> None:
    run = write_run(tmp_path / "results", "mobilenetv2", "final", seed=2, parameters=150000)
    assert plot_run(run, tmp_path / "svg", "svg", 60) == 0
    for name in RUN_FIGURES:
        text = (tmp_path / "svg" / f"{name}.svg").read_text()
        assert "<svg" in text and "</svg>" in text


def test_bad_history_is_refused_without_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = tmp_path / "runs" / "resnet" / "x" / "history.csv"
    history.parent.mkdir(parents=True)
    pd.DataFrame({"epoch": [1], "train_loss": [1.0]}).to_csv(history, index=False)
    out = tmp_path / "curves.png"
    assert cli.main(["plot-run", "--history", str(history), "--curves", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ferflow plot-run: error: ") and str(history) in err and "val_macro_f1" in err
    assert not out.exists()


def test_study_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    runs = [write_run(results, "resnet", e, seed=i, parameters=481551) for i, e in enumerate(["a", "b", "final"])]
    runs.append(write_run(results, "vgg16", "baseline", seed=9, parameters=14_800_000))
    sweep = tmp_path / "sweep_resnet.png"
    assert cli.main(["plot-study", "sweep", "--out", str(sweep), "--dpi", "40",
                     *(str(r / "history.csv") for r in runs[:2])]) == 0
    params = tmp_path / "params_vs_accuracy.svg"
    assert cli.main(["plot-study", "params", "--out", str(params), "--dpi", "40",
                     *(str(r / "metrics.json") for r in runs)]) == 0
    assert Image.open(sweep).format == "PNG"
    svg = params.read_text()
    assert "resnet final" in svg and "vgg16 sweep" in svg  # legend entries

    stale = runs[0] / "metrics.json"
    stale.write_text(stale.read_text().replace('"parameters"', '"params_unknown"'))
    out = tmp_path / "again.png"
    assert cli.main(["plot-study", "params", "--out", str(out), str(stale)]) == 1
    assert "parameters" in capsys.readouterr().err and not out.exists()
