"""The study's report: ONE self-contained HTML file (figures embedded as data URIs, inline CSS) that opens
from disk without any network access.

Sections: the data (per-stage class counts from each stage's summary.json, the data figures), the
results (finals and sweep tables as mean ± std over seeds, each cell's per-seed values on hover, the finals'
per-class test F1 in a table of its own so that each fits a 1400-px page, the per-seed detail table, model-size
and sweep figures), one section per experiment (scores over seeds,
each seed's row, and the figures of its representative seed: the one ``deploy-seed`` would choose) and
deployment (the deployed seed and why, ONNX check and latency of each final) when ``--deploy`` names
architectures. Every file is found by its path in the results layout (:class:`ferflow.layout.Layout`);
a missing one is an error naming it.
"""

from __future__ import annotations

import argparse
import base64
import html
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ferflow.classes import KNOWN_CLASSES
from ferflow.config import add_settings_argument
from ferflow.errors import FerflowError
from ferflow.layout import RUN_FIGURES, SEARCH, TIME_FIGURE, Layout
from ferflow.report.tables import NUMBER_FORMATS, headers, percent
from ferflow.results import choose_seed
from ferflow.storage import read_json, write_text

DATA_FIGURES = {
    "samples": "Sample training images per class",
    "distribution": "Class distribution of each data stage",
    "tsne_raw": "t-SNE of raw pixels (test split)",
}
RUN_FIGURE_CAPTIONS = {
    "curves": "Training curves (the dotted line marks the best epoch by validation macro-F1)",
    "per_class": "Per-class precision, recall and F1 on the test split",
    "confusion": "Confusion matrix on the test split (counts and row-normalised)",
    "tsne": "t-SNE of the penultimate-layer embeddings of the test split",
}
MIME = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}
PER_CLASS_F1 = "test_f1_"  # the finals' per-class test F1 columns (test_f1_<class>_mean, _std): a table of their own

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg-alt: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg); }
header { background: #24292f; color: #fff; padding: 1.4rem 2rem; }
header h1 { margin: 0; font-size: 1.6rem; }
header p { margin: .3rem 0 0; color: #d0d7de; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line); padding: .5rem 2rem;
      font-size: .9rem; z-index: 1; }
nav a { color: var(--accent); text-decoration: none; margin-right: 1.2rem; }
main { max-width: 1280px; margin: 0 auto; padding: 1rem 2rem 4rem; }
h2 { border-bottom: 1px solid var(--line); padding-bottom: .3rem; margin-top: 2.5rem; }
h3 { margin-top: 2rem; }
section.run { border: 1px solid var(--line); border-radius: 8px; padding: .2rem 1.2rem 1rem; margin: 1.5rem 0; }
.table { max-width: 100%; overflow-x: auto; margin: .8rem 0 1.2rem; }
table { border-collapse: collapse; font-size: .88rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: .3rem .6rem; text-align: right; }
td:not(.text) { white-space: nowrap; }
th { background: var(--bg-alt); }
td.text, th.text { text-align: left; }
tr:nth-child(even) td { background: #fbfcfd; }
td.best { font-weight: 700; }
figure { margin: 1rem 0 1.6rem; }
figure img, figure object { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: .88rem; margin-top: .3rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 0 1.5rem; }
.scores { display: flex; flex-wrap: wrap; gap: .6rem 2rem; margin: .6rem 0; }
.scores div { background: var(--bg-alt); border-radius: 6px; padding: .4rem .8rem; }
.scores b { display: block; font-size: 1.2rem; }
.muted { color: var(--muted); }
.warning { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: .5rem .9rem; }
td[title] { cursor: help; text-decoration: underline dotted var(--line); }
details summary { cursor: pointer; color: var(--accent); }
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", required=True, help="the results folder, results/<dataset.name>")
    parser.add_argument("--out", required=True, help="the HTML file to write")
    add_settings_argument(parser, "report")
    parser.add_argument("--stages", nargs="+", required=True, help="data stages in order (raw affectnet balanced rgb)")
    parser.add_argument("--sweeps", nargs="*", default=[], help="architectures with a sweep table and figure")
    parser.add_argument("--experiments", nargs="*", default=[], help="experiments as <model>/<experiment>")
    parser.add_argument(
        "--deploy",
        nargs="*",
        default=[],
        help="architectures with a deployed final (deployed.json, onnx_check.json, latency.json)",
    )
    parser.add_argument("--searches", nargs="*", default=[], help="architectures with an Optuna search")
    parser.add_argument(
        "--crossdata", action="store_true", help="a section on faces from elsewhere (tables/crossdata.csv)"
    )
    parser.add_argument("--title", default="", help="report title (default: ferflow — <dataset>)")


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FerflowError(f"{path}: report input not found")
    return path


def embed_figure(path: str | Path, caption: str) -> str:
    """A ``<figure>`` holding the file as a base64 data URI (pdf as an embedded object)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in MIME:
        raise FerflowError(f"{path}: cannot embed a .{fmt} figure (use png, svg or pdf)")
    uri = f"data:{MIME[fmt]};base64,{base64.b64encode(_existing(path).read_bytes()).decode('ascii')}"
    alt = html.escape(caption, quote=True)
    body = (
        f'<object data="{uri}" type="application/pdf" width="100%" height="600" aria-label="{alt}"></object>'
        if fmt == "pdf"
        else f'<img src="{uri}" alt="{alt}">'
    )
    return f"<figure>{body}<figcaption>{html.escape(caption)}</figcaption></figure>"


def html_table(rows: list[list[Any]], headers: list[str], best: Iterable[int] = (), digits: int = 4) -> str:
    """An HTML table: text left-aligned, ints with thousands separators, floats with ``digits`` decimals;
    the maximum of each column in ``best`` in bold."""
    best = set(best)
    maxima = {
        j: max((r[j] for r in rows if isinstance(r[j], (int, float)) and not pd.isna(r[j])), default=None) for j in best
    }

    def cell(j: int, value: Any) -> str:
        if isinstance(value, str):
            return f'<td class="text">{html.escape(value)}</td>'
        if value is None or pd.isna(value):
            return "<td>–</td>"
        text = f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}"
        return f'<td class="best">{text}</td>' if j in best and value == maxima[j] else f"<td>{text}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(j, v) for j, v in enumerate(r)) + "</tr>" for r in rows)
    return boxed(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def boxed(table: str) -> str:
    """A table inside a box as wide as the page that scrolls sideways when the table is wider (no cell wraps a
    number)."""
    return f'<div class="table">{table}</div>'


def _frame_rows(frame: pd.DataFrame) -> list[list[Any]]:
    """Rows of a data frame as plain Python values (ints stay ints, missing values None)."""
    return [
        [None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in row]
        for row in frame.itertuples(index=False)
    ]


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV written by ``ferflow tables`` (a missing file is an error naming it)."""
    return pd.read_csv(_existing(path), keep_default_na=False, na_values=[""])


def seed_values(seeds: pd.DataFrame, model: str, experiment: str, score: str) -> str:
    """``seed 1: 51.2 · seed 2: 49.9``, the per-seed values (%) behind one mean (shown on hover)."""
    rows = seeds[(seeds["model"] == model) & (seeds["experiment"] == experiment)]
    return " · ".join(f"seed {int(r['seed'])}: {percent(float(r[score]))}" for _, r in rows.iterrows() if score in r)


def score_table(frame: pd.DataFrame, seeds: pd.DataFrame) -> str:
    """An aggregated table of ``ferflow tables``: scores in % as mean ± std (per-seed values on hover, the best
    mean of each column in bold), parameters with thousands separators, collapsed seeds as ``k of n``."""
    names = headers()
    columns = [c for c in frame.columns if not c.endswith("_std")]
    maxima = {c: frame[c].max() for c in columns if c.endswith("_mean")}

    def cell(row: pd.Series, column: str) -> str:
        value = row[column]
        if column == "collapsed":
            text = f"{int(value)} of {int(row['seeds'])}"
            return f'<td class="best">{text}</td>' if value else f"<td>{text}</td>"
        if column.endswith("_mean"):
            if pd.isna(value):
                return "<td>–</td>"
            text = percent(value, row[column[: -len("_mean")] + "_std"])
            per_seed = seed_values(seeds, row["model"], row["experiment"], column[: -len("_mean")])
            hover = html.escape(per_seed, quote=True)
            bold = ' class="best"' if value == maxima[column] else ""
            return f'<td{bold} title="{hover}">{text}</td>'
        if column == "parameters":
            return "<td>–</td>" if pd.isna(value) else f"<td>{int(value):,}</td>"
        if column in NUMBER_FORMATS:
            return "<td>–</td>" if pd.isna(value) else f"<td>{NUMBER_FORMATS[column].format(value)}</td>"
        return f'<td class="text">{html.escape(str(value))}</td>' if isinstance(value, str) else f"<td>{value}</td>"

    head = "".join(f"<th>{html.escape(names[c])}</th>" for c in columns)
    body = "".join("<tr>" + "".join(cell(row, c) for c in columns) + "</tr>" for _, row in frame.iterrows())
    return boxed(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def finals_tables(finals: pd.DataFrame, seeds: pd.DataFrame) -> str:
    """The finals table in two, so that each fits the page: compute, seeds and overall scores, then the per-class
    test F1 of the same rows."""
    per_class = [c for c in finals.columns if c.startswith(PER_CLASS_F1)]
    overall = score_table(finals.drop(columns=per_class), seeds)
    if not per_class:
        return overall
    return (
        f"{overall}<p class='muted'>Per-class test F1 of the same models, in %, mean ± std over their seeds.</p>"
        f"{score_table(finals[['model', 'experiment', *per_class]], seeds)}"
    )


def seed_rows(seeds: pd.DataFrame) -> str:
    """The per-seed detail table (tables/seeds.csv) as HTML, scores and shares in % with one decimal."""
    names = headers()
    shown = seeds.drop(columns=["collapsed"]).assign(collapse=seeds["collapse"].fillna(""))
    counts = ("best_epoch", "epochs")
    fractions = [c for c in shown.columns if c not in counts and pd.api.types.is_float_dtype(shown[c])]
    shown[fractions] = shown[fractions] * 100
    return html_table(_frame_rows(shown), [names[c] for c in shown.columns], digits=1)


def collapse_note(seeds: pd.DataFrame) -> str:
    """A warning naming every experiment with collapsed seeds ("" when none collapsed)."""
    counts = seeds.groupby(["model", "experiment"], sort=False)["collapsed"].agg(["sum", "size"])
    hit = counts[counts["sum"] > 0]
    if hit.empty:
        return ""
    items = ", ".join(
        f"{html.escape(m)}/{html.escape(e)}: {int(r['sum'])} of {int(r['size'])} seeds collapsed"
        for (m, e), r in hit.iterrows()
    )
    return (
        f'<p class="warning"><b>Collapsed runs</b> (one class ≥ 95 % of val predictions or ≥ 90 % dead '
        f"embedding units): {items}. Their scores are in the means; see the per-seed table.</p>"
    )


def data_section(layout: Layout, stages: list[str]) -> str:
    """Class counts of every stage's training split (and the val/test splits) plus the data figures."""
    summaries = {stage: read_json(_existing(layout.summary(stage))) for stage in stages}
    last = summaries[stages[-1]]
    columns = [(f"{stage} train", summaries[stage].get("train", {})) for stage in stages]
    columns += [(split, last.get(split, {})) for split in ("val", "test")]
    classes = [c for c in KNOWN_CLASSES if any(c in counts for _, counts in columns)]
    rows = [[name] + [int(counts.get(name, 0)) for _, counts in columns] for name in classes]
    rows.append(["total"] + [int(sum(counts.values())) for _, counts in columns])
    parts = [
        '<h2 id="data">Data</h2>',
        f"<p>Images per class at each stage ({' → '.join(map(html.escape, stages))}). "
        "Validation and test splits pass through the stages unchanged.</p>",
        html_table(rows, ["class"] + [c for c, _ in columns]),
    ]
    figures = [embed_figure(layout.data_figure(n), c) for n, c in DATA_FIGURES.items()]
    parts += ['<div class="grid">', *figures, "</div>"]
    return "\n".join(parts)


def results_section(layout: Layout, sweeps: list[str], seeds: pd.DataFrame) -> str:
    """The finals table, model size against test scores, each architecture's sweep table and curves, and
    every run's scores per seed."""
    n = sorted(set(seeds.groupby(["model", "experiment"]).size()))
    over = f"in %, mean ± std over {'–'.join(map(str, n))} seed{'s' if n != [1] else ''}"
    over += "; hover a score for each seed's value"
    parts = [
        '<h2 id="results">Results</h2>',
        collapse_note(seeds),
        f"<h3>Final models</h3><p class='muted'>{over}.</p>",
        finals_tables(read_table(layout.table("finals")), seeds),
        embed_figure(
            layout.study_figure("params_vs_accuracy"),
            "Test accuracy and macro-F1 against parameter count: a dot per seed, mean ± std per "
            "experiment (stars: final runs)",
        ),
        embed_figure(
            layout.study_figure(TIME_FIGURE),
            "Time to accuracy: validation accuracy and macro-F1 of every run against its training wall minutes "
            "(each epoch's seconds from history.csv, validation included)",
        ),
    ]
    for model in sweeps:
        parts += [
            f'<h3 id="sweep-{html.escape(model)}">{html.escape(model)} sweep (validation at the best epoch; test)</h3>',
            score_table(read_table(layout.table(f"sweep_{model}")), seeds),
            embed_figure(
                layout.study_figure(f"sweep_{model}"),
                f"{model}: validation accuracy and macro-F1 per epoch of each sweep experiment "
                "(mean over seeds, band: lowest to highest seed)",
            ),
        ]
    parts += ["<details><summary>Every run, seed by seed</summary>", seed_rows(seeds), "</details>"]
    return "\n".join(parts)


def experiment_section(layout: Layout, experiment: str, seeds: pd.DataFrame) -> str:
    """One experiment: its scores over seeds, each seed's row, and the figures of its representative seed."""
    model, name = experiment.split("/", 1)
    rows = seeds[(seeds["model"] == model) & (seeds["experiment"] == name)]
    if rows.empty:
        raise FerflowError(f"{layout.table('seeds')}: no runs of {experiment}")
    records = [
        {**r, "collapse": r["collapse"] if isinstance(r["collapse"], str) else ""} for r in rows.to_dict("records")
    ]
    chosen, reason = choose_seed(records)

    def spread(score: str) -> str:
        values = rows[score].astype(float)
        return percent(values.mean(), values.std()) + " %"  # std of one seed: NaN, no spread

    scores = [
        ("test accuracy", spread("test_acc")),
        ("test macro-F1", spread("test_macro_f1")),
        ("val macro-F1", spread("val_macro_f1")),
        ("seeds collapsed", f"{int(rows['collapsed'].sum())} of {len(rows)}"),
    ]
    tiles = "".join(f"<div>{html.escape(k)}<b>{html.escape(v)}</b></div>" for k, v in scores)
    seed = int(chosen["seed"])
    figure = {
        n: embed_figure(layout.run_figure(model, name, seed, n), f"seed {seed}: {RUN_FIGURE_CAPTIONS[n]}")
        for n in RUN_FIGURES
    }
    figures = f'{figure["curves"]}<div class="grid">{figure["per_class"]}{figure["tsne"]}</div>{figure["confusion"]}'
    anchor = "run-" + experiment.replace("/", "-")
    return (
        f'<section class="run" id="{html.escape(anchor)}"><h3>{html.escape(experiment)}</h3>'
        f'<div class="scores">{tiles}</div>{seed_rows(rows)}'
        f"<p class='muted'>Figures of seed {seed}: {html.escape(reason)}.</p>{figures}</section>"
    )


def deploy_section(layout: Layout, models: list[str]) -> str:
    """The deployed seed of each final and why, its ONNX agreement and CPU throughput."""
    parts = ['<h2 id="deployment">Deployment</h2>']
    for model in models:
        record = read_json(_existing(layout.deployed_file(model, "record")))
        check = read_json(_existing(layout.deployed_file(model, "onnx_check")))
        latency = read_json(_existing(layout.deployed_file(model, "latency")))
        rows = [
            [
                r["engine"],
                int(r["batch_size"]),
                float(r["images_per_s"]),
                float(r["ms_per_batch"]),
                float(r["ms_per_batch"]) / int(r["batch_size"]),
            ]
            for r in latency.get("rows", [])
        ]
        status = "warning" if record.get("all_collapsed") else "muted"
        cpu = latency.get("cpu_capability", {})
        flags = ", ".join(f"{k.replace('_', ' ')} {'yes' if v else 'no'}" for k, v in cpu.items() if k != "torch")
        cpu_text = (
            f" on {html.escape(str(latency.get('cpu')))} ({html.escape(str(cpu.get('torch')))}: {flags})" if cpu else ""
        )
        int8 = latency.get("int8_comparison")
        int8_text = (
            ""
            if int8 is None
            else (
                f"<p>int8 (model.int8.onnx, {int8['bytes']['int8']:,} bytes against {int8['bytes']['fp32']:,}): test "
                f"accuracy {100 * int8['int8']['accuracy']:.2f} % against fp32 {100 * int8['fp32']['accuracy']:.2f} % "
                f"(drop {int8['accuracy_drop_points']:.2f} points), macro-F1 {100 * int8['int8']['macro_f1']:.2f} % "
                f"against {100 * int8['fp32']['macro_f1']:.2f} %, same prediction on {100 * int8['agreement']:.2f} % "
                f"of the images.</p>"
            )
        )
        parts += [
            f"<h3>{html.escape(model)}</h3>",
            f"<p class='{status}'>Deployed: seed {html.escape(str(record.get('seed')))} of "
            f"{html.escape(str(record.get('experiment')))} ({html.escape(str(record.get('reason')))}), "
            f"copied to {html.escape(layout.deployed_file(model, 'checkpoint'))}.</p>",
            f"<p>ONNX export: predictions {'match' if check.get('predictions_match') else 'DIFFER'} on "
            f"{check.get('n_images', '?')} images, largest absolute logit difference "
            f"{float(check.get('max_abs_diff', float('nan'))):.2e}.</p>",
            int8_text,
            f"<p class='muted'>CPU latency (median) with {html.escape(str(latency.get('threads', '?')))} "
            f"threads{cpu_text}:</p>",
            html_table(rows, ["engine", "batch size", "images / s", "ms / batch", "ms / image"], digits=3),
        ]
    return "\n".join(parts)


def search_section(layout: Layout, models: Iterable[str]) -> str:
    """Each architecture's Optuna search: its best trial, every trial, the optimisation history and the
    parameter importances."""
    parts = ['<h2 id="search">Search</h2>']
    for model in models:
        best = read_json(_existing(layout.search_best(model)))
        trials = read_table(layout.search_table(model))
        params = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in best["params"].items())
        parts += [
            f"<h3>{html.escape(model)}</h3>",
            f"<p>Study {html.escape(best['study'])}: {best['finished_trials']} finished trials (complete or pruned). "
            f"Best: trial {best['trial']}, val macro-F1 {best['val_macro_f1']:.4f} with {html.escape(params)}; its "
            f"settings train as the sweep experiment <code>{SEARCH}</code>.</p>",
            html_table(_frame_rows(trials), list(trials.columns), best=[list(trials.columns).index("val_macro_f1")]),
            '<div class="grid">',
            *(
                embed_figure(layout.search_figure(model, name), f"{model} search: {caption}")
                for name, caption in (
                    ("history", "best val macro-F1 of each trial and the best so far"),
                    ("importances", "fANOVA importance of each searched setting"),
                )
            ),
            "</div>",
        ]
    return "\n".join(parts)


def crossdata_section(layout: Layout) -> str:
    """Faces from elsewhere: one row per final, one column per dataset (mean recall on the classes it shares with
    the model, accuracy, faces not found), then every row's per-class recall."""
    frame = read_table(layout.table("crossdata"))
    how = frame["detect"].astype(bool).map({True: "detected", False: "whole image"})
    frame["label"] = frame["dataset"] + " (" + how + ", ids " + frame["ids"].astype(str) + ")"
    cells = frame.apply(
        lambda r: (
            f"{percent(r['mean_recall'])} ({percent(r['accuracy'])})"
            + (f", {int(r['no_face'])} without a face" if r["detect"] else "")
        ),
        axis=1,
    )
    wide = frame.assign(cell=cells).pivot(index="model", columns="label", values="cell").fillna("–")
    head = "<th>Model</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in wide.columns)
    body = "".join(
        f'<tr><td class="text">{html.escape(m)}</td>' + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
        for m, row in zip(wide.index, wide.to_numpy())
    )
    recalls = [c for c in frame.columns if c.startswith("recall_")]
    detail_head = "".join(f"<th>{html.escape(c)}</th>" for c in ["Model", "Dataset", *(c[7:] for c in recalls)])
    detail = "".join(
        f'<tr><td class="text">{html.escape(r["model"])}</td><td class="text">{html.escape(r["label"])}</td>'
        + "".join(f"<td>{'–' if pd.isna(r[c]) else percent(r[c])}</td>" for c in recalls)
        + "</tr>"
        for _, r in frame.iterrows()
    )
    return "\n".join(
        [
            '<h2 id="elsewhere">Faces from elsewhere</h2>',
            "<p class='muted'>Each final's deployed seed on labelled faces that are not FER2013's own: mean recall "
            "(accuracy) in %, on the classes that the model and the dataset share; with detection, an image without "
            "a face counts as wrong.</p>",
            boxed(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"),
            "<h3>Recall per class (%)</h3>",
            boxed(f"<table><thead><tr>{detail_head}</tr></thead><tbody>{detail}</tbody></table>"),
        ]
    )


def build_report(
    layout: Layout,
    title: str,
    stages: list[str],
    sweeps: list[str],
    experiments: list[str],
    deploy: list[str],
    searches: Iterable[str] = (),
    crossdata: bool = False,
) -> str:
    """The whole HTML document."""
    seeds = read_table(layout.table("seeds"))
    classes = len(read_json(_existing(layout.summary(stages[-1])))["train"])
    sections = [
        data_section(layout, stages),
        results_section(layout, sweeps, seeds),
        '<h2 id="runs">Runs</h2>' + "".join(experiment_section(layout, e, seeds) for e in experiments),
    ]
    nav = [("data", "Data"), ("results", "Results"), ("runs", "Runs")]
    if searches:
        sections.append(search_section(layout, searches))
        nav.append(("search", "Search"))
    if deploy:
        sections.append(deploy_section(layout, deploy))
        nav.append(("deployment", "Deployment"))
    if crossdata:
        sections.append(crossdata_section(layout))
        nav.append(("elsewhere", "Faces from elsewhere"))
    links = "".join(f'<a href="#{a}">{t}</a>' for a, t in nav)
    links += "".join(f'<a href="#run-{html.escape(e.replace("/", "-"))}">{html.escape(e)}</a>' for e in experiments)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>Facial emotion recognition with compact CNNs: "
        f"{len(experiments)} experiments, {len(seeds)} runs, {classes} classes.</p></header>"
        f"<nav>{links}</nav><main>{''.join(sections)}</main></body></html>\n"
    )


def run(args: argparse.Namespace) -> int:
    layout = Layout(args.results, args.settings["format"])
    title = args.title or f"ferflow — {Path(args.results).name}"
    document = build_report(
        layout, title, args.stages, args.sweeps, args.experiments, args.deploy, args.searches, args.crossdata
    )
    write_text(args.out, document)
    print(f"wrote {args.out} ({len(document) / 1e6:.1f} MB)")
    return 0
