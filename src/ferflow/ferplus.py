"""FER+ labels: ten crowd votes a FER2013 face (Barsoum et al. 2016, arXiv 1608.01041), turned into a label or
a soft target by one of the paper's label modes.

Layouts (read by :mod:`ferflow.sources`):

- Microsoft's generated layout: ``FER2013Train/``, ``FER2013Valid/``, ``FER2013Test/`` (any subset, at any depth
  of a folder or zip), each with its PNG faces and a ``label.csv`` without header whose rows are
  ``<image>,"<face box>",<10 vote counts>`` (:data:`ferflow.classes.FERPLUS_VOTES`);
- the ICML CSV (``fer2013.csv``) with ``fer2013new.csv`` beside it: the same votes, row-aligned (columns
  ``Usage, Image name, neutral, happiness, ..., unknown, NF``).

Splits: Train is the training split (validation is carved from it), Valid (the FER2013 PublicTest rows) the test
split, Test (the PrivateTest rows) too where present; ``test_split`` picks them as for FER2013.

Label modes (:func:`process_votes`; Microsoft's ``src/ferplus.py`` is the reference):

- ``majority``: votes of 1 are dropped as outliers; the top emotion needs more than half of the remaining votes
  (unknown and not-a-face included), else the face is *unknown* and left out;
- ``crossentropy``: after the same outlier removal, the top emotions (at most three, until 75 % of the votes) as a
  distribution, the soft target of a cross-entropy loss; a face whose kept emotions hold at most half of the votes
  is unknown;
- ``probability``: the same distribution; each epoch a label is drawn from it (the paper's PLD sampling).

A face whose top vote is "unknown" or "not a face" is left out; both kinds are counted. The test and validation
splits are always labelled by majority (the benchmark's measure); the training split carries the soft targets of
the two distribution modes (:attr:`ferflow.storage.Split.soft`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ferflow.classes import FERPLUS_VOTES, canonical, class_list
from ferflow.errors import FerflowError

LABEL_MODES: tuple[str, ...] = ("majority", "probability", "crossentropy")
SOFT_MODES: tuple[str, ...] = ("probability", "crossentropy")
"""The modes whose training targets are distributions (``probability`` draws a label from them each epoch)."""
FOLDERS: dict[str, tuple[str, str]] = {
    "fer2013train": ("train", "Training"),
    "fer2013valid": ("test", "PublicTest"),
    "fer2013test": ("test", "PrivateTest"),
}
"""Microsoft's folder names (lower case) → (ferflow split, the FER2013 Usage its rows come from)."""
LABEL_FILE = "label.csv"
VOTES_CSV = "fer2013new.csv"
EMOTIONS = len(FERPLUS_VOTES) - 2  # the columns before unknown and not-a-face


@dataclass
class Votes:
    """One folder's (or CSV's) faces: image names and their vote counts ``(N, 10)``."""

    names: list[str]
    counts: np.ndarray


def parse_label_csv(text: str, source: str) -> Votes:
    """Rows ``<image>,"<box>",<10 votes>`` → :class:`Votes`; a one-line error naming ``source`` and the row for a
    short row or votes that are negative or not whole numbers."""
    names, rows = [], []
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 2 + len(FERPLUS_VOTES):
            raise FerflowError(
                f"{source}: row {n} has {len(row)} fields, expected image, box and {len(FERPLUS_VOTES)} votes"
            )
        names.append(row[0].strip())
        rows.append(row[2:])
    return Votes(names, parse_counts(rows, source))


def parse_counts(rows: list[list[str]], source: str) -> np.ndarray:
    """Vote counts as text → ``(N, 10)`` int64; a one-line error naming the first row that is not whole numbers
    of at least 0."""
    counts = np.zeros((len(rows), len(FERPLUS_VOTES)), dtype=np.int64)
    for i, row in enumerate(rows):
        try:
            values = [float(v) for v in row]
        except ValueError:
            values = [float("nan")]
        if len(values) != len(FERPLUS_VOTES) or not all(v >= 0 and float(v).is_integer() for v in values):
            raise FerflowError(f"{source}: row {i + 1} has votes {', '.join(row)} (expected whole numbers ≥ 0)")
        counts[i] = values
    return counts


def process_votes(counts: np.ndarray, mode: str) -> np.ndarray:
    """Each face's emotion distribution ``(N, 8)`` under ``mode`` (one-hot for ``majority``), a row of NaN where
    the face is unknown or not a face (see the module docstring)."""
    if mode not in LABEL_MODES:
        raise FerflowError(f"FER+ label mode {mode!r} is none of {', '.join(LABEL_MODES)}")
    votes = np.where(counts <= 1, 0, counts).astype(np.float64)  # outlier removal: single votes dropped
    total = votes.sum(1)
    out = np.full((len(votes), EMOTIONS), np.nan)
    for i, row in enumerate(votes):
        if total[i] == 0:
            continue
        kept = np.zeros(len(row))
        if mode == "majority":
            top = int(np.argmax(row))
            if row[top] > 0.5 * total[i]:
                kept[top] = row[top]
        else:
            kept = _top_emotions(row.copy(), total[i])
        if kept[EMOTIONS:].any() or kept.sum() <= 0.5 * total[i]:
            continue  # unknown or not a face on top, or too few votes integrated
        out[i] = kept[:EMOTIONS] / kept[:EMOTIONS].sum()
    return out


def _top_emotions(row: np.ndarray, total: float) -> np.ndarray:
    """The paper's distribution: take the top-voted entries (ties together) until 75 % of the votes or three
    emotions; an unknown / not-a-face entry among them stops the search (and empties the result when it comes
    first). More than three entries empty it."""
    kept = np.zeros(len(row))
    count = 0
    while kept.sum() < 0.75 * total and count < 3:
        top = row.max()
        if top <= 0:
            break
        for i in np.flatnonzero(row == top):
            kept[i], row[i] = top, 0
            count += 1
            if i >= EMOTIONS:
                if kept[:EMOTIONS].sum() > 0:
                    kept[i] = 0
                    count -= 1
                return kept if count <= 3 else np.zeros(len(row))
    return kept if count <= 3 else np.zeros(len(row))


@dataclass
class Labelled:
    """The faces kept from one vote table: their row index, label and (distribution modes) soft target, the
    dataset's classes, and how many were left out."""

    rows: np.ndarray
    labels: np.ndarray
    soft: np.ndarray | None
    classes: tuple[str, ...]
    unknown: int
    not_face: int
    sample: bool  # probability mode: a label is drawn from each soft row every epoch

    def left_out(self) -> str:
        """How many faces were left out, and why (the logs' wording)."""
        return f"left out: {self.unknown} unknown, {self.not_face} not a face"


def label_faces(counts: np.ndarray, mode: str, class_map: Mapping[str, str | None] | None, source: str) -> Labelled:
    """Label a vote table under ``mode``, with the emotions that ``class_map`` drops (e.g. ``contempt: null``)
    removed before labelling (their votes no longer count). Faces left unknown or voted "not a face" are counted."""
    names = [canonical(v, class_map) for v in FERPLUS_VOTES[:EMOTIONS]]
    kept = [i for i, n in enumerate(names) if n]
    classes = class_list(names[i] for i in kept)
    if not classes:
        raise FerflowError(f"{source}: the class map drops every FER+ emotion")
    counts = counts.copy()
    counts[:, [i for i, n in enumerate(names) if not n]] = 0  # a dropped emotion's votes no longer count
    distribution = process_votes(counts, mode)
    valid = ~np.isnan(distribution[:, 0])
    not_face = int(np.sum(~valid & (counts.argmax(1) == len(FERPLUS_VOTES) - 1)))
    soft = np.zeros((int(valid.sum()), len(classes)))  # vote columns → the dataset's classes (canonical order)
    np.add.at(soft, (slice(None), [classes.index(names[i]) for i in kept]), distribution[valid][:, kept])
    return Labelled(
        np.flatnonzero(valid),
        soft.argmax(1).astype(np.int64),
        soft.astype(np.float32) if mode in SOFT_MODES else None,
        classes,
        int(np.sum(~valid)) - not_face,
        not_face,
        mode == "probability",
    )
