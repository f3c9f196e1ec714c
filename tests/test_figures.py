"""ferflow plot-run / plot-study: figures render from small result files; bad input is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fake_results import write_run
from ferflow import cli
from ferflow.report.figures import params_figure, sweep_figure

RUN_FIGURES = ("curves", "per_class", "confusion", "tsne")


def plot_run(run: Path, out: Path, fmt: str, dpi: int) -> int:
    return cli.main(
        [
            "plot-run",
            "--history",
            str(run / "history.csv"),
            "--metrics",
            str(run / "metrics.json"),
            "--tsne",
            str(run / "tsne.csv"),
            "--curves",
            str(out / f"curves.{fmt}"),
            "--per-class",
            str(out / f"per_class.{fmt}"),
            "--confusion",
            str(out / f"confusion.{fmt}"),
            "--tsne-figure",
            str(out / f"tsne.{fmt}"),
            "--settings",
            json.dumps({"dpi": dpi}),
        ]
    )


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
    runs = [write_run(results, "resnet", e, seed=s, parameters=481551) for e in ["a", "b", "final"] for s in (1, 2)]
    runs.append(write_run(results, "vgg16", "baseline", seed=9, parameters=14_800_000))
    sweep = tmp_path / "sweep_resnet.png"
    assert (
        cli.main(
            [
                "plot-study",
                "sweep",
                "--out",
                str(sweep),
                "--settings",
                '{"dpi": 40}',
                *(str(r / "history.csv") for r in runs[:4]),
            ]
        )
        == 0
    )
    params = tmp_path / "params_vs_accuracy.svg"
    assert (
        cli.main(
            [
                "plot-study",
                "params",
                "--out",
                str(params),
                "--settings",
                '{"dpi": 40}',
                *(str(r / "metrics.json") for r in runs),
            ]
        )
        == 0
    )
    assert Image.open(sweep).format == "PNG"
    svg = params.read_text()
    assert "resnet final" in svg and "vgg16 sweep" in svg  # legend entries

    stale = runs[0] / "metrics.json"
    stale.write_text(stale.read_text().replace('"parameters"', '"params_unknown"'))
    out = tmp_path / "again.png"
    assert cli.main(["plot-study", "params", "--out", str(out), str(stale)]) == 1
    assert "parameters" in capsys.readouterr().err and not out.exists()


def test_sweep_figure_draws_the_mean_over_seeds_and_their_spread(tmp_path: Path) -> None:
    results = tmp_path / "results"
    three = [write_run(results, "resnet", "a", seed=s, parameters=1) for s in (1, 2, 3)]
    one = write_run(results, "resnet", "b", seed=1, parameters=1, epochs=3)
    fig = sweep_figure([str(r / "history.csv") for r in [*three, one]], "t")
    ax = fig.axes[1]  # validation macro-F1
    lines = {line.get_label(): line for line in ax.get_lines()}
    f1s = np.array([pd.read_csv(r / "history.csv")["val_macro_f1"] for r in three])
    assert np.allclose(lines["a (3 seeds)"].get_ydata(), f1s.mean(axis=0))
    assert list(lines["b (1 seed)"].get_xdata()) == [1, 2, 3]
    (band,) = ax.collections  # only the experiment with several seeds has a band
    ys = band.get_paths()[0].vertices[:, 1]
    assert np.isclose(ys.max(), f1s.max()) and np.isclose(ys.min(), f1s.min())


def test_params_figure_shows_each_experiment_as_mean_and_std_over_seeds(tmp_path: Path) -> None:
    results = tmp_path / "results"
    runs = [write_run(results, "resnet", "final", seed=s, parameters=481551) for s in (1, 2, 3)]
    fig = params_figure([str(r / "metrics.json") for r in runs], "t")
    accuracies = [json.loads((r / "metrics.json").read_text())["accuracy"] for r in runs]
    (container,) = fig.axes[0].containers
    line, _, (bars,) = container
    assert line.get_ydata()[0] == pytest.approx(np.mean(accuracies))
    segment = bars.get_segments()[0][:, 1]
    assert segment.max() - segment.min() == pytest.approx(2 * np.std(accuracies, ddof=1))
    dots = fig.axes[0].collections[0].get_offsets()[:, 1]
    assert sorted(dots) == pytest.approx(sorted(accuracies))


def test_time_to_accuracy_figure_plots_scores_against_cumulative_minutes(tmp_path: Path) -> None:
    from ferflow.report.figures import time_curve
    from ferflow.results import read_history

    results = tmp_path / "results"
    runs = [write_run(results, "resnet", "final", seed=s, parameters=481551) for s in (1, 2)]
    history = read_history(runs[0] / "history.csv")
    curve = time_curve(history)
    assert curve["minutes"].tolist() == pytest.approx((history["epoch_seconds"].cumsum() / 60).tolist())
    assert curve["val_acc"].tolist() == history["val_acc"].tolist()
    out = tmp_path / "time.svg"
    argv = ["plot-study", "time", "--out", str(out), "--settings", '{"dpi": 40}']
    assert cli.main([*argv, *(str(r / "history.csv") for r in runs)]) == 0
    svg = out.read_text()
    assert "resnet/final/seed1" in svg and "resnet/final/seed2" in svg and "training wall time" in svg


def test_score_axes_are_in_percent_as_the_tables_are(tmp_path: Path) -> None:
    from ferflow.report.figures import curves_figure, per_class_figure
    from ferflow.results import read_history, read_metrics

    results = tmp_path / "results"
    runs = [write_run(results, "resnet", "final", seed=s, parameters=481551) for s in (1, 2)]
    history, metrics = read_history(runs[0] / "history.csv"), read_metrics(runs[0] / "metrics.json")
    figures = {
        "curves": (curves_figure(history, "t"), [1, 2]),  # accuracy and macro-F1; the loss stays as it is
        "sweep": (sweep_figure([str(r / "history.csv") for r in runs], "t"), [0, 1]),
        "params": (params_figure([str(r / "metrics.json") for r in runs], "t"), [0, 1]),
        "per_class": (per_class_figure(metrics, "t"), [0]),
    }
    for name, (fig, scored) in figures.items():
        fig.canvas.draw()
        for k in scored:
            ax = fig.axes[k]
            low, high = ax.get_ylim()
            shown = [(t.get_position()[1], t.get_text()) for t in ax.get_yticklabels()]
            shown = [(value, text.replace("−", "-")) for value, text in shown if low <= value <= high]
            assert [float(text) for _, text in shown] == pytest.approx([100 * v for v, _ in shown]), (name, k, shown)
            assert "%" in ax.get_title() + ax.get_ylabel(), (name, k)
    assert "test accuracy " + f"{100 * metrics['accuracy']:.1f} %" in figures["per_class"][0].axes[0].get_title()
