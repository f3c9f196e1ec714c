"""``ferflow affectnet``: inject AffectNet faces into the training split (validation and test untouched).

Two layouts are read, found anywhere up to two folders below the source root:

- the Kaggle redistribution: ``<class>/image<id>.jpg`` folders (AffectNet names: anger, contempt, ...)
  with an optional ``labels.csv`` (columns ``,pth,label,relFCs``; ``pth`` is ``<class>/<file>`` and
  ``label`` a second labelling);
- the official release: annotation CSVs with ``subDirectory_filePath``, the face box
  (``face_x, face_y, face_width, face_height``) and ``expression`` codes (0 Neutral, 1 Happy, 2 Sad,
  3 Surprise, 4 Fear, 5 Disgust, 6 Anger, 7 Contempt; codes >= 8 and contempt dropped). Every such CSV
  found is read; each image is cropped to its face box before conversion.

Label policy (class-folder layout only; the official CSV has one labelling): ``folder`` trusts the
folder; ``agree`` keeps a file only when its ``labels.csv`` label names the same class as its folder.
Under ``agree`` a file missing from ``labels.csv`` has no second label to agree, so it is dropped (the
count is logged); under ``folder`` it is kept. The setting ``max_per_class`` caps each class after the policy
with a seeded random choice of files (unreadable ones then reduce the count).

Images are converted with :func:`ferflow.faces.to_face48` (any mode or size → 48×48 gray, Lanczos;
colour JPEGs are decoded straight to their luma plane, which is faster and within a few gray levels of
converting the decoded RGB) and get ids ``affectnet:<path relative to the layout root>``. An unreadable
image (or an empty face box) is skipped and logged; more than 1% of the candidate images unreadable
fails the stage, listing the files. Decoding runs in a pool of ``--workers`` processes.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ferflow.classes import CLASS_NAMES, canonical
from ferflow.cli import positive_int
from ferflow.config import add_settings_argument, default
from ferflow.errors import FerflowError
from ferflow.faces import IMAGE_SUFFIXES, to_face48
from ferflow.preprocess.stages import replace_train
from ferflow.progress import progress_bar
from ferflow.storage import Split, load_split

OFFICIAL_CODES: dict[int, str] = {
    0: "neutral",
    1: "happy",
    2: "sad",
    3: "surprise",
    4: "fear",
    5: "disgust",
    6: "angry",
    7: "",
}
"""Expression codes of the official AffectNet annotation CSVs ('' = contempt, dropped; >= 8 dropped)."""

MAX_UNREADABLE = 0.01
SEARCH_DEPTH = 2
OFFICIAL_IMAGE_DIRS = ("", "Manually_Annotated_Images", "Manually_Annotated/Manually_Annotated_Images")


@dataclass(frozen=True)
class Item:
    """One image to inject: where it is, its canonical class, its id and an optional face box."""

    path: Path
    label: int
    id: str
    box: tuple[int, int, int, int] | None = None  # left, top, right, bottom


# --------------------------------------------------------------------------------------------- layouts
def _csv_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return next(csv.reader(fh), [])


def _is_official_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv" and "subDirectory_filePath" in _csv_header(path)


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))


def _is_class_root(folder: Path) -> bool:
    """A folder holding labels.csv or at least one subfolder named after an AffectNet class."""
    if (folder / "labels.csv").is_file():
        return True
    for sub in _visible_dirs(folder):
        try:
            canonical(sub.name)
            return True
        except KeyError:
            pass
    return False


def find_layout(root: Path) -> tuple[str, Path, list[Path]]:
    """Locate the AffectNet layout under ``root`` → ``(kind, layout root, official CSVs)``.

    ``kind`` is "official" or "folders"; searched breadth-first up to :data:`SEARCH_DEPTH` levels.
    """
    if root.is_file():
        if _is_official_csv(root):
            return "official", root.parent, [root]
        raise FerflowError(f"{root}: not an AffectNet folder, archive or annotation CSV")
    level = [root]
    for _ in range(SEARCH_DEPTH + 1):
        for folder in level:
            csvs = [p for p in sorted(folder.glob("*.csv")) if _is_official_csv(p)]
            if csvs:
                return "official", folder, csvs
            if _is_class_root(folder):
                return "folders", folder, []
        level = [d for folder in level for d in _visible_dirs(folder)]
    raise FerflowError(
        f"{root}: no AffectNet layout found (class folders with an optional labels.csv, "
        "or an annotation CSV with subDirectory_filePath)"
    )


def read_kaggle_labels(path: Path) -> dict[str, str]:
    """``labels.csv`` of the Kaggle redistribution → {``<class>/<file>``: canonical second label}."""
    labels: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"pth", "label"} <= set(reader.fieldnames):
            raise FerflowError(f"{path}: expected columns pth and label, found {reader.fieldnames}")
        for row in reader:
            try:
                labels[row["pth"].strip().replace("\\", "/")] = canonical(row["label"])
            except KeyError:
                raise FerflowError(f"{path}: label {row['label']!r} of {row['pth']} maps to no ferflow class") from None
    return labels


def folder_items(root: Path, classes: list[str], policy: str, log: Callable[[str], None]) -> list[Item]:
    """Candidate images of the class-folder layout, after the label policy."""
    wanted = {CLASS_NAMES.index(c) for c in classes}
    labels_csv = root / "labels.csv"
    second = read_kaggle_labels(labels_csv) if labels_csv.is_file() else None
    if policy == "agree" and second is None:
        raise FerflowError(f"{labels_csv}: label policy 'agree' needs labels.csv, which is absent")
    items: list[Item] = []
    for folder in _visible_dirs(root):
        try:
            name = canonical(folder.name)
        except KeyError:
            raise FerflowError(f"{folder}: class folder {folder.name!r} maps to no ferflow class") from None
        if name not in CLASS_NAMES:
            log(f"{folder.name}: dropped (no FER2013 counterpart)")
            continue
        label = CLASS_NAMES.index(name)
        if label not in wanted:
            continue
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        if len(images) < len(files):
            log(f"{folder.name}: {len(files) - len(images)} non-image files ignored")
        rel = [p.relative_to(root).as_posix() for p in images]
        if policy == "agree":
            missing = sum(r not in second for r in rel)
            disagree = sum(r in second and second[r] != name for r in rel)
            keep = [(p, r) for p, r in zip(images, rel) if second.get(r) == name]
            log(
                f"{folder.name} → {name}: {len(images)} files, {len(keep)} agree with labels.csv, "
                f"{disagree} disagree, {missing} missing from labels.csv (dropped)"
            )
        else:
            keep = list(zip(images, rel))
            missing = sum(r not in second for r in rel) if second is not None else len(rel)
            log(f"{folder.name} → {name}: {len(images)} files kept by folder ({missing} not in labels.csv)")
        items += [Item(p, label, f"affectnet:{r}") for p, r in keep]
    return items


def official_items(root: Path, csvs: list[Path], classes: list[str], log: Callable[[str], None]) -> list[Item]:
    """Candidate images of the official annotation CSVs (expression codes, face boxes)."""
    wanted = {CLASS_NAMES.index(c) for c in classes}
    items: list[Item] = []
    for path in csvs:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
        need = {"subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "expression"}
        if rows and not need <= set(rows[0]):
            raise FerflowError(f"{path}: missing columns {', '.join(sorted(need - set(rows[0])))}")
        base = _official_image_base(root, rows)
        dropped = 0
        for n, row in enumerate(rows, start=2):
            try:
                code = int(row["expression"])
                x, y = int(float(row["face_x"])), int(float(row["face_y"]))
                w, h = int(float(row["face_width"])), int(float(row["face_height"]))
            except (TypeError, ValueError):
                raise FerflowError(f"{path}:{n}: expression and face box must be numbers") from None
            name = OFFICIAL_CODES.get(code, "")
            if not name:
                dropped += 1
                continue
            label = CLASS_NAMES.index(name)
            if label in wanted:
                rel = row["subDirectory_filePath"].strip().replace("\\", "/")
                items.append(Item(base / rel, label, f"affectnet:{rel}", (x, y, x + w, y + h)))
        log(f"{path.name}: {len(rows)} rows, {dropped} contempt or non-emotion (code >= 8) rows dropped")
    return items


def _official_image_base(root: Path, rows: list[dict[str, str]]) -> Path:
    """The folder the CSV's ``subDirectory_filePath`` is relative to (its own, or Manually_Annotated_Images)."""
    for row in rows[:50]:
        rel = row["subDirectory_filePath"].strip()
        for sub in OFFICIAL_IMAGE_DIRS:
            if (root / sub / rel).is_file():
                return root / sub
    return root


def cap_per_class(items: list[Item], max_per_class: int | None, seed: int) -> list[Item]:
    """At most ``max_per_class`` items of each class (seeded random choice, original order kept)."""
    if max_per_class is None:
        return items
    rng = random.Random(seed)
    keep: set[int] = set()
    for label in sorted({it.label for it in items}):
        idx = [i for i, it in enumerate(items) if it.label == label]
        keep.update(idx if len(idx) <= max_per_class else rng.sample(idx, max_per_class))
    return [it for i, it in enumerate(items) if i in keep]


# --------------------------------------------------------------------------------------------- decoding
def decode(item: Item) -> np.ndarray | None:
    """One image as a 48×48 gray array, cropped to its face box if any; None when unreadable."""
    try:
        with Image.open(item.path) as image:
            if image.format == "JPEG" and image.mode in ("RGB", "YCbCr"):
                image.draft("L", image.size)  # decode the luma plane only: same size, ~2x faster
            image.load()
            if item.box is not None:
                left, top, right, bottom = item.box
                box = (max(left, 0), max(top, 0), min(right, image.width), min(bottom, image.height))
                if box[2] <= box[0] or box[3] <= box[1]:
                    return None
                image = image.crop(box)
            return to_face48(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _decode_chunk(items: list[Item]) -> list[np.ndarray | None]:
    return [decode(it) for it in items]


def decode_all(items: list[Item], workers: int) -> list[np.ndarray | None]:
    """Decode every item, in order, with a process pool of ``workers`` (inline for small jobs)."""
    if workers <= 1 or len(items) < 512:
        size = 256
        parts = map(_decode_chunk, (items[i : i + size] for i in range(0, len(items), size)))
        return _collect(parts, len(items))
    size = -(-len(items) // (workers * 16))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return _collect(pool.map(_decode_chunk, chunks), len(items))


def _collect(parts: Iterable[list[np.ndarray | None]], total: int) -> list[np.ndarray | None]:
    """The decoded chunks joined in order, with a progress bar."""
    arrays: list[np.ndarray | None] = []
    with progress_bar(total, "decoding") as bar:
        for part in parts:
            arrays += part
            bar.update(len(part))
    return arrays


def load_affectnet(
    root: Path,
    classes: list[str],
    policy: str,
    max_per_class: int | None,
    seed: int,
    workers: int,
    log: Callable[[str], None],
) -> Split:
    """The AffectNet images of ``classes`` under ``root`` as a split (ids ``affectnet:<rel path>``)."""
    kind, layout_root, csvs = find_layout(root)
    log(f"AffectNet layout: {kind} at {layout_root}")
    if kind == "official":
        if policy != "folder":
            log(f"label policy {policy!r} applies to the class-folder layout only: the official CSV labels are used")
        items = official_items(layout_root, csvs, classes, log)
    else:
        items = folder_items(layout_root, classes, policy, log)
    items = cap_per_class(items, max_per_class, seed)
    if not items:
        raise FerflowError(f"{root}: no AffectNet images of classes {', '.join(classes)} found")
    arrays = decode_all(items, workers)
    bad = [str(it.path) for it, arr in zip(items, arrays) if arr is None]
    if bad:
        log(f"{len(bad)} of {len(items)} images unreadable, skipped:")
        for path in bad:
            log(f"  unreadable: {path}")
        if len(bad) > MAX_UNREADABLE * len(items):
            shown = ", ".join(bad[:5]) + (f" (+{len(bad) - 5} more, listed in the log)" if len(bad) > 5 else "")
            raise FerflowError(f"{root}: {len(bad)} of {len(items)} AffectNet images unreadable (> 1%): {shown}")
    good = [(it, arr) for it, arr in zip(items, arrays) if arr is not None]  # never empty: <= 1% failed
    return Split(
        np.stack([arr for _, arr in good]),
        np.array([it.label for it, _ in good], dtype=np.int64),
        np.array([it.id for it, _ in good], dtype=np.str_),
    )


def _source_root(args: argparse.Namespace, tmp: Path) -> Path:
    if args.source == "synthetic":
        from ferflow.synthetic import write_affectnet_like

        return write_affectnet_like(tmp, args.settings["synthetic_per_class"], args.seed)
    from ferflow.fetch import resolve_source

    return resolve_source(args.source, args.settings["sha256"], Path(args.cache_dir))


# --------------------------------------------------------------------------------------------- command
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--in-dir", required=True, help="data stage directory to read (train/val/test.npz)")
    parser.add_argument("--out", required=True, help="data stage directory to write")
    parser.add_argument(
        "--source",
        required=True,
        help="kaggle:<owner>/<dataset> | http(s) URL | local zip, tar.gz, folder or CSV | synthetic",
    )
    parser.add_argument("--cache-dir", default="resources/downloads", help="downloads and extracted archives")
    add_settings_argument(parser, "affectnet")
    parser.add_argument(
        "--seed", type=int, default=default("seed"), help="seed of the max_per_class choice (and of source synthetic)"
    )
    parser.add_argument("--workers", type=positive_int, default=default("threads"), help="decoding processes")


def run(args: argparse.Namespace) -> int:
    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    settings = args.settings
    classes = settings["classes"]  # the schema's class names, at least one, each once
    src, out = Path(args.in_dir), Path(args.out)
    train = load_split(src / "train.npz")
    if train.images.ndim != 3:
        raise FerflowError(f"{src / 'train.npz'}: AffectNet injection expects grayscale (N, 48, 48) images")
    with tempfile.TemporaryDirectory(prefix="ferflow-affectnet-") as tmp:
        injected = load_affectnet(
            _source_root(args, Path(tmp)),
            classes,
            settings["label_policy"],
            settings["max_per_class"],
            args.seed,
            args.workers,
            log,
        )
    counts = injected.counts()
    log("injected into train: " + ", ".join(f"{c} {counts[c]}" for c in classes) + f" (total {len(injected)})")
    empty = [c for c in classes if counts[c] == 0]
    if empty:
        log(f"warning: the source has no images of {', '.join(empty)}")
    merged = Split.concat([train, injected])
    replace_train(src, out, merged)
    return 0
