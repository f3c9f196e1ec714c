"""The study's report: ONE self-contained HTML file (figures embedded as data URIs, inline CSS) that opens
from disk without any network access.

Sections: the data (per-stage class counts from each stage's summary.json, the data figures), the
results (finals table, sweep tables, model-size and sweep figures), one section per run (test scores,
curves, per-class scores, confusion matrix, embedding t-SNE), and deployment (ONNX check and latency of
each final model) when ``--deploy`` names runs. Every file is found by its path in the results layout
(``results/<dataset>/...``, see :class:`Layout`); a missing one is an error naming it.
"""

from __future__ import annotations

import argparse
import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ferflow.classes import CLASS_NAMES
from ferflow.errors import FerflowError
from ferflow.results import read_metrics
from ferflow.storage import read_json, write_text
from ferflow.tables import FINALS_COLUMNS, SWEEP_COLUMNS

DATA_FIGURES = {
    "samples": "Sample training images per class",
    "distribution": "Class distribution of each data stage",
    "tsne_raw": "t-SNE of raw pixels (test split)",
}
RUN_FIGURES = {
    "curves": "Training curves (the dotted line marks the best epoch by validation macro-F1)",
    "per_class": "Per-class precision, recall and F1 on the test split",
    "confusion": "Confusion matrix on the test split (counts and row-normalised)",
    "tsne": "t-SNE of the penultimate-layer embeddings of the test split",
}
MIME = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}

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
table { border-collapse: collapse; margin: .8rem 0 1.2rem; font-size: .88rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: .3rem .6rem; text-align: right; }
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
"""


@dataclass(frozen=True)
class Layout:
    """Where the report's inputs lie under ``results/<dataset>`` (the paths of the pipeline's rules)."""

    root: Path
    fmt: str

    def summary(self, stage: str) -> Path:
        return self.root / "data" / stage / "summary.json"

    def data_figure(self, name: str) -> Path:
        return self.root / "figures" / "data" / f"{name}.{self.fmt}"

    def table(self, name: str) -> Path:
        return self.root / "tables" / f"{name}.csv"

    def study_figure(self, name: str) -> Path:
        return self.root / "figures" / f"{name}.{self.fmt}"

    def run_file(self, run: str, name: str) -> Path:
        return self.root / "runs" / run / name

    def run_figure(self, run: str, name: str) -> Path:
        return self.root / "runs" / run / "figures" / f"{name}.{self.fmt}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", required=True, help="the results folder, results/<dataset.name>")
    parser.add_argument("--out", required=True, help="the HTML file to write")
    parser.add_argument("--format", default="png", choices=sorted(MIME), help="figure format (figures.format)")
    parser.add_argument("--stages", nargs="+", required=True, help="data stages in order (raw affectnet balanced rgb)")
    parser.add_argument("--sweeps", nargs="*", default=[], help="architectures with a sweep table and figure")
    parser.add_argument("--runs", nargs="*", default=[], help="runs as <model>/<experiment>")
    parser.add_argument("--deploy", nargs="*", default=[], help="runs with latency.json and onnx_check.json")
    parser.add_argument("--title", default="", help="report title (default: ferflow — <dataset>)")


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise FerflowError(f"{path}: report input not found")
    return path


def embed_figure(path: Path, caption: str) -> str:
    """A ``<figure>`` holding the file as a base64 data URI (pdf as an embedded object)."""
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in MIME:
        raise FerflowError(f"{path}: cannot embed a .{fmt} figure (use png, svg or pdf)")
    uri = f"data:{MIME[fmt]};base64,{base64.b64encode(_existing(path).read_bytes()).decode('ascii')}"
    alt = html.escape(caption, quote=True)
    body = (f'<object data="{uri}" type="application/pdf" width="100%" height="600" aria-label="{alt}"></object>'
            if fmt == "pdf" else f'<img src="{uri}" alt="{alt}">')
    return f"<figure>{body}<figcaption>{html.escape(caption)}</figcaption></figure>"


def html_table(rows: list[list[Any]], headers: list[str], best: Iterable[int] = (), digits: int = 4) -> str:
    """An HTML table: text left-aligned, ints with thousands separators, floats with ``digits`` decimals;
    the maximum of each column in ``best`` in bold."""
    best = set(best)
    maxima = {j: max((r[j] for r in rows if isinstance(r[j], (int, float)) and not pd.isna(r[j])), default=None)
              for j in best}

    def cell(j: int, value: Any) -> str:
        if isinstance(value, str):
            return f'<td class="text">{html.escape(value)}</td>'
        if value is None or pd.isna(value):
            return "<td>–</td>"
        text = f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}"
        return f'<td class="best">{text}</td>' if j in best and value == maxima[j] else f"<td>{text}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(j, v) for j, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _frame_rows(frame: pd.DataFrame) -> list[list[Any]]:
    """Rows of a data frame as plain Python values (ints stay ints, missing values None)."""
    return [[None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in row]
            for row in frame.itertuples(index=False)]


def csv_table(path: Path, headers: dict[str, str]) -> str:
    """A table written by ``ferflow tables``, its score columns' best values in bold."""
    frame = pd.read_csv(_existing(path))
    names = list(frame.columns)
    scores = [j for j, c in enumerate(names) if c.startswith(("val_", "test_"))]
    frame = frame.astype({names[j]: float for j in scores})
    return html_table(_frame_rows(frame), [headers.get(c, c) for c in names], best=scores)


def data_section(layout: Layout, stages: list[str]) -> str:
    """Class counts of every stage's training split (and the val/test splits) plus the data figures."""
    summaries = {stage: read_json(_existing(layout.summary(stage))) for stage in stages}
    last = summaries[stages[-1]]
    columns = [(f"{stage} train", summaries[stage].get("train", {})) for stage in stages]
    columns += [(split, last.get(split, {})) for split in ("val", "test")]
    rows = [[name] + [int(counts.get(name, 0)) for _, counts in columns] for name in CLASS_NAMES]
    rows.append(["total"] + [int(sum(counts.values())) for _, counts in columns])
    parts = ['<h2 id="data">Data</h2>',
             f"<p>Images per class at each stage ({' → '.join(map(html.escape, stages))}). "
             "Validation and test splits pass through the stages unchanged.</p>",
             html_table(rows, ["class"] + [c for c, _ in columns])]
    parts += ['<div class="grid">'] + [embed_figure(layout.data_figure(n), c) for n, c in DATA_FIGURES.items()] + ["</div>"]
    return "\n".join(parts)


def results_section(layout: Layout, sweeps: list[str]) -> str:
    """The finals table, model size against test scores, then each architecture's sweep table and curves."""
    parts = ['<h2 id="results">Results</h2>', "<h3>Final models (test split)</h3>",
             csv_table(layout.table("finals"), FINALS_COLUMNS),
             embed_figure(layout.study_figure("params_vs_accuracy"),
                          "Test accuracy and macro-F1 against parameter count (stars: final runs)")]
    for model in sweeps:
        parts += [f'<h3 id="sweep-{html.escape(model)}">{html.escape(model)} sweep (validation, best epoch)</h3>',
                  csv_table(layout.table(f"sweep_{model}"), SWEEP_COLUMNS),
                  embed_figure(layout.study_figure(f"sweep_{model}"),
                               f"{model}: validation accuracy and macro-F1 per epoch of each sweep experiment")]
    return "\n".join(parts)


def run_section(layout: Layout, run: str) -> str:
    """One run: headline test scores and its four figures."""
    metrics = read_metrics(_existing(layout.run_file(run, "metrics.json")))
    scores = [("test accuracy", f"{metrics['accuracy']:.4f}"), ("test macro-F1", f"{metrics['macro_f1']:.4f}"),
              ("parameters", f"{metrics['parameters']:,}" if "parameters" in metrics else "–"),
              ("test images", f"{metrics['n_images']:,}" if "n_images" in metrics else "–"),
              ("checkpoint epoch", str(metrics.get("epoch") or "–"))]
    tiles = "".join(f"<div>{html.escape(k)}<b>{html.escape(v)}</b></div>" for k, v in scores)
    figure = {n: embed_figure(layout.run_figure(run, n), c) for n, c in RUN_FIGURES.items()}
    figures = f'{figure["curves"]}<div class="grid">{figure["per_class"]}{figure["tsne"]}</div>{figure["confusion"]}'
    anchor = "run-" + run.replace("/", "-")
    return (f'<section class="run" id="{html.escape(anchor)}"><h3>{html.escape(run)}</h3>'
            f'<div class="scores">{tiles}</div>{figures}</section>')


def deploy_section(layout: Layout, runs: list[str]) -> str:
    """ONNX agreement and CPU throughput of each deployed run."""
    parts = ['<h2 id="deployment">Deployment</h2>']
    for run in runs:
        check = read_json(_existing(layout.run_file(run, "onnx_check.json")))
        latency = read_json(_existing(layout.run_file(run, "latency.json")))
        rows = [[r["engine"], int(r["batch_size"]), float(r["images_per_s"]), float(r["ms_per_batch"])]
                for r in latency.get("rows", [])]
        parts += [f"<h3>{html.escape(run)}</h3>",
                  f"<p>ONNX export: predictions {'match' if check.get('predictions_match') else 'DIFFER'} on "
                  f"{check.get('n_images', '?')} images, largest absolute logit difference "
                  f"{float(check.get('max_abs_diff', float('nan'))):.2e}.</p>",
                  f"<p class='muted'>CPU latency with {html.escape(str(latency.get('threads', '?')))} threads:</p>",
                  html_table(rows, ["engine", "batch size", "images / s", "ms / batch"], digits=2)]
    return "\n".join(parts)


def build_report(layout: Layout, title: str, stages: list[str], sweeps: list[str], runs: list[str],
                 deploy: list[str]) -> str:
    """The whole HTML document."""
    sections = [data_section(layout, stages), results_section(layout, sweeps),
                '<h2 id="runs">Runs</h2>' + "".join(run_section(layout, r) for r in runs)]
    nav = [("data", "Data"), ("results", "Results"), ("runs", "Runs")]
    if deploy:
        sections.append(deploy_section(layout, deploy))
        nav.append(("deployment", "Deployment"))
    links = "".join(f'<a href="#{a}">{t}</a>' for a, t in nav)
    links += "".join(f'<a href="#run-{html.escape(r.replace("/", "-"))}">{html.escape(r)}</a>' for r in runs)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{html.escape(title)}</h1><p>Facial emotion recognition with compact CNNs: "
            f"{len(runs)} runs, {len(CLASS_NAMES)} classes.</p></header><nav>{links}</nav>"
            f"<main>{''.join(sections)}</main></body></html>\n")


def run(args: argparse.Namespace) -> int:
    layout = Layout(Path(args.results), args.format)
    title = args.title or f"ferflow — {Path(args.results).name}"
    document = build_report(layout, title, args.stages, args.sweeps, args.runs, args.deploy)
    write_text(args.out, document)
    print(f"wrote {args.out} ({len(document) / 1e6:.1f} MB)")
    return 0
