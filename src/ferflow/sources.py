"""Read labelled faces from the layouts FER datasets ship in: class folders or the ICML CSV.

Layouts (in a folder or a zip, at any depth):

- class folders with splits: ``train/<class>/<image>`` and ``test/<class>/<image>`` (Kaggle's
  ``msambare/fer2013``) → keys ``"train"`` and ``"test"``;
- class folders without splits: ``<class>/<image>`` (e.g. AffectNet's ``affectnet/anger/``) → key ``"all"``;
- the original ICML 2013 CSV, ``fer2013.csv`` or ``icml_face_data.csv`` (columns ``emotion``,
  ``pixels``, ``Usage``; icml_face_data.csv spells them with a leading space): Usage ``Training`` →
  ``"train"``, ``PublicTest`` / ``PrivateTest`` → ``"test"``. A path may also name the CSV itself.

Class folder names go through :func:`ferflow.classes.canonical` (AffectNet's ``anger`` is ``angry``;
``contempt`` is dropped); an unknown name is an error naming the folder. Hidden files, ``__MACOSX``
and non-image files are ignored.

The split filter ``test_split`` (``"PublicTest"``, ``"PrivateTest"``, ``"all"`` or None):

- ICML CSV: the Usage rows kept as ``"test"``; None keeps ``PublicTest``, the study's test set;
- class folders: None and ``"all"`` keep every image; a split name keeps, among the test images (and
  the images of top-level class folders), those whose file names do not start with the other split's
  prefix (``PublicTest_<id>.jpg``, ``PrivateTest_<id>.jpg``): an image with neither prefix is kept.

A filter that leaves no test image where there were some is an error naming the filter.

Conversion: by default every image goes through :func:`ferflow.faces.to_face48` (any size and
mode → 48×48 grayscale). With ``strict=True`` (used by ``ferflow download`` for the canonical data)
an image must already be 48×48: another size is refused with an error naming the file; any mode is
accepted when its content is gray (colour channels equal within ``GRAY_TOLERANCE`` levels, which
allows for JPEG chroma noise) and converted to 8-bit grayscale, while a colour image is refused.
Within each split, images are returned sorted by id, so results do not depend on archive order.
"""

from __future__ import annotations

import io
import os
import re
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ferflow import ferplus
from ferflow.classes import ALIASES, FERPLUS_VOTES, ICML_CODES, KNOWN_CLASSES, canonical, class_list, label_of
from ferflow.errors import FerflowError
from ferflow.faces import IMAGE_SIZE, IMAGE_SUFFIXES, to_face48, to_grayscale_array
from ferflow.progress import progress_bar
from ferflow.storage import Split

CSV_NAMES: tuple[str, ...] = ("fer2013.csv", "icml_face_data.csv")
SPLIT_FOLDERS: tuple[str, ...] = ("train", "test")
TEST_SPLITS: tuple[str, ...] = ("PublicTest", "PrivateTest", "all")
EXPECTED = "expected train/<class>/, test/<class>/, <class>/, FER+'s FER2013<split>/label.csv or an ICML CSV"
ClassMap = Mapping[str, str | None] | None
"""A dataset's own class names → canonical names (None: the class is dropped)."""
GRAY_TOLERANCE = 12
"""Largest difference (0-255 levels) between colour channels for an image to count as gray."""


@dataclass(frozen=True)
class _Entry:
    """One labelled image file: where it is, its split key, label and source id."""

    key: str  # member name in a zip, or path of a file
    split: str
    cls: str  # canonical class name
    id: str


def test_split_of(file_name: str) -> str | None:
    """``"PublicTest"`` / ``"PrivateTest"`` from a Kaggle test file name, else None."""
    for name in ("PublicTest", "PrivateTest"):
        if file_name.startswith(name):
            return name
    return None


def _check_test_split(test_split: str | None) -> None:
    if test_split is not None and test_split not in TEST_SPLITS:
        raise FerflowError(f"test split {test_split!r} is none of {', '.join(TEST_SPLITS)}")


def _ignored(parts: tuple[str, ...]) -> bool:
    hidden = any(p.startswith((".", "__MACOSX")) for p in parts)
    return hidden or PurePosixPath(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES


def _filter_error(source: str, test_split: str, skipped: dict[str, int], unit: str) -> FerflowError:
    """The error of a split filter that left no test image (``skipped``: what it dropped, by split name)."""
    dropped = ", ".join(f"{n} {name}" for name, n in sorted(skipped.items()))
    return FerflowError(
        f"{source}: the split filter {test_split!r} kept none of the test {unit} "
        f"(dropped: {dropped}); ask for another split or 'all'"
    )


def _entries(names: Iterable[str], source: str, test_split: str | None, class_map: ClassMap = None) -> list[_Entry]:
    """Classify relative image paths (posix) of a class-folder layout, filtered by ``test_split``; folder names
    go through ``class_map`` first (a class mapped to None is dropped)."""
    entries: list[_Entry] = []
    layouts: set[str] = set()
    skipped: dict[str, int] = {}  # test split name → images the filter dropped
    labels: dict[str, str] = {}  # folder → canonical class ('' for a dropped class)
    for name in names:
        parts = PurePosixPath(name).parts
        if not parts or _ignored(parts):
            continue
        if len(parts) < 2:
            raise FerflowError(f"{source}: image {name} is not inside a class folder")
        if len(parts) >= 3 and parts[-3].lower() in SPLIT_FOLDERS:
            split, folder = parts[-3].lower(), "/".join(parts[-3:-1])
        else:
            split, folder = "all", "/".join(parts[:-1])
        layouts.add("split" if split != "all" else "flat")
        if folder not in labels:
            try:
                labels[folder] = canonical(parts[-2], class_map)
            except KeyError:
                known = ", ".join([*KNOWN_CLASSES, *ALIASES])
                raise FerflowError(
                    f"{source}: unknown class folder {folder!r} (known names: {known}; or map it in the "
                    "dataset's classes)"
                ) from None
        label = labels[folder]
        if not label:
            continue
        if split != "train" and test_split not in (None, "all"):
            tag = test_split_of(parts[-1])
            if tag is not None and tag != test_split:
                skipped[tag] = skipped.get(tag, 0) + 1
                continue
        entries.append(_Entry(name, split, label, "/".join(parts[-3:] if split != "all" else parts[-2:])))
    if len(layouts) > 1:
        raise FerflowError(f"{source}: mixes train/test class folders with top-level class folders")
    if skipped and not any(e.split != "train" for e in entries):
        raise _filter_error(source, str(test_split), skipped, "images")
    return entries


class FaceHook(Protocol):
    """Finds and crops the face of a whole image (``ferflow evaluate --detect``): a ``(48, 48)`` uint8 face, or None
    where it finds none; the ids of those images are collected in ``missed``."""

    missed: list[str]

    def __call__(self, image: Image.Image) -> np.ndarray | None: ...


def _decode(data: bytes, name: str, strict: bool, face: FaceHook | None = None) -> np.ndarray | None:
    """Bytes of one image file → (48, 48) uint8 (through ``face`` when given: None where it finds no face)."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        if face is not None:
            return face(ImageOps.exif_transpose(image))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise FerflowError(f"{name}: not a readable image ({exc})") from None
    if not strict:
        if image.mode == "L" and image.size == (IMAGE_SIZE, IMAGE_SIZE):
            return np.asarray(image, dtype=np.uint8)
        return to_face48(image)
    if image.size != (IMAGE_SIZE, IMAGE_SIZE):
        width, height = image.size
        raise FerflowError(f"{name}: image is {width}×{height}, expected {IMAGE_SIZE}×{IMAGE_SIZE} (refused)")
    if image.mode == "L":
        return np.asarray(image, dtype=np.uint8)
    if image.mode in ("RGB", "RGBA", "CMYK", "YCbCr", "P", "PA"):
        rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
        spread = int((rgb.max(axis=2) - rgb.min(axis=2)).max())
        if spread > GRAY_TOLERANCE:
            raise FerflowError(f"{name}: {image.mode} image in colour, expected grayscale (refused)")
    return to_grayscale_array(image)


def _face(data: bytes, name: str, strict: bool, face: FaceHook | None, id_: str) -> np.ndarray:
    """One image's 48×48 face; a blank one where ``face`` finds none (its id recorded in ``face.missed``)."""
    found = _decode(data, name, strict, face)
    if found is None:
        assert face is not None
        face.missed.append(id_)
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    return found


def _splits(
    entries: list[_Entry],
    read: Callable[[str], bytes],
    display: Callable[[str], str],
    strict: bool,
    face: FaceHook | None = None,
) -> dict[str, Split]:
    by_split: dict[str, list[_Entry]] = {}
    for e in entries:
        by_split.setdefault(e.split, []).append(e)
    classes = class_list(e.cls for e in entries)
    out: dict[str, Split] = {}
    with progress_bar(len(entries), "decoding") as bar:
        for split, items in by_split.items():
            items.sort(key=lambda e: e.id)
            images = np.empty((len(items), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
            for i, e in enumerate(items):
                images[i] = _face(read(e.key), display(e.key), strict, face, e.id)
                bar.update()
            labels = np.array([classes.index(e.cls) for e in items], dtype=np.int64)
            out[split] = Split(images, labels, np.array([e.id for e in items]), classes)
    return out


def _find_csv(names: Iterable[str]) -> str | None:
    """The ICML CSV among relative paths (fer2013.csv preferred), else None."""
    found = {PurePosixPath(n).name.lower(): n for n in names if not _ignored_csv(n)}
    return next((found[c] for c in CSV_NAMES if c in found), None)


def _ignored_csv(name: str) -> bool:
    return any(p.startswith((".", "__MACOSX")) for p in PurePosixPath(name).parts)


_NON_DIGIT = re.compile(r"[^0-9 ]")


def read_icml_csv(
    handle: io.IOBase | str | os.PathLike[str],
    source: str,
    test_split: str | None = "all",
    votes: io.IOBase | str | os.PathLike[str] | None = None,
    class_map: ClassMap = None,
    label_mode: str = "majority",
) -> dict[str, Split]:
    """The ICML CSV (emotion, pixels, Usage; column names may carry spaces) → ``{"train", "test"}``;
    ``test_split`` picks the test rows by Usage (None: ``PublicTest``). With FER+'s ``fer2013new.csv`` as
    ``votes`` the labels are FER+'s (:func:`ferplus_labels`), else FER2013's emotion codes."""
    import pandas as pd

    _check_test_split(test_split)
    try:
        df = pd.read_csv(handle, dtype=str, keep_default_na=False)
    except (ValueError, OSError, UnicodeDecodeError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise FerflowError(f"{source}: not a readable CSV ({exc})") from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in ("emotion", "pixels", "usage") if c not in df.columns]
    if missing:
        raise FerflowError(f"{source}: CSV lacks column(s) {', '.join(missing)} (expected emotion, pixels, Usage)")
    usage = df["usage"].str.strip()
    known = usage.isin(["Training", "PublicTest", "PrivateTest"])
    if not known.all():
        row = int(np.flatnonzero(~known.to_numpy())[0])
        raise FerflowError(
            f"{source}: row {row + 1} has Usage {usage.iloc[row]!r} (expected Training, PublicTest or PrivateTest)"
        )
    try:
        codes = df["emotion"].astype(int).to_numpy()
    except ValueError:
        raise FerflowError(f"{source}: column emotion holds a non-integer value") from None
    bad = ~np.isin(codes, list(ICML_CODES))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise FerflowError(f"{source}: row {row + 1} has emotion code {codes[row]} (expected 0-6)")
    pixels = df["pixels"].str.strip()
    per = IMAGE_SIZE * IMAGE_SIZE
    counts = pixels.str.count(" ").to_numpy() + 1
    if (counts != per).any() or pixels.str.contains(_NON_DIGIT).any():
        row = int(np.flatnonzero((counts != per) | pixels.str.contains(_NON_DIGIT).to_numpy())[0])
        raise FerflowError(f"{source}: row {row + 1} does not hold {per} pixel values 0-255")
    values = np.array(" ".join(pixels).split(), dtype=np.int64) if len(df) else np.zeros(0, dtype=np.int64)
    if values.size and values.max() > 255:
        row = int(np.flatnonzero(values > 255)[0]) // per
        raise FerflowError(f"{source}: row {row + 1} has a pixel value above 255")
    images = values.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    ids = np.array([f"{Path(source).name}:{u}/{i}" for i, u in enumerate(usage)])
    train = (usage == "Training").to_numpy()
    test_split = test_split or "PublicTest"
    test = (usage == test_split).to_numpy() if test_split != "all" else ~train
    if not test.any() and (~train).any():
        raise _filter_error(source, test_split, usage[~train].value_counts().to_dict(), "rows (Usage)")
    if votes is not None:
        return ferplus_labels(votes, source, Split(images, codes, ids), train, test, class_map, label_mode)
    lut = np.array([label_of(ICML_CODES[c]) for c in sorted(ICML_CODES)], dtype=np.int64)
    labels = lut[codes]
    return {name: Split(images[rows], labels[rows], ids[rows]) for name, rows in (("train", train), ("test", test))}


def ferplus_labels(
    votes: io.IOBase | str | os.PathLike[str],
    source: str,
    rows: Split,
    train: np.ndarray,
    test: np.ndarray,
    class_map: ClassMap,
    label_mode: str,
) -> dict[str, Split]:
    """The ICML CSV's faces (``rows``) labelled by FER+'s row-aligned votes (``fer2013new.csv``): the training rows
    by ``label_mode``, the test rows by majority."""
    import pandas as pd

    name = f"{source} + {ferplus.VOTES_CSV}"
    try:
        df = pd.read_csv(votes, dtype=str, keep_default_na=False)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise FerflowError(f"{name}: not a readable CSV ({exc})") from None
    if len(df) != len(rows) or df.shape[1] != 2 + len(FERPLUS_VOTES):
        raise FerflowError(
            f"{name}: {len(df)} rows of {df.shape[1]} columns, expected {len(rows)} rows (one per face) of Usage, "
            f"Image name and {len(FERPLUS_VOTES)} votes"
        )
    counts = ferplus.parse_counts(df.iloc[:, 2:].to_numpy().tolist(), name)
    out = {}
    for split, mask, mode in (("train", train, label_mode), ("test", test, "majority")):
        index = np.flatnonzero(mask)
        kept = ferplus.label_faces(counts[index], mode, class_map, name)
        index = index[kept.rows]
        out[split] = Split(rows.images[index], kept.labels, rows.ids[index], kept.classes, kept.soft, kept.sample)
        print(f"{name}: {split} {len(index)} faces ({mode}); {kept.left_out()}", file=sys.stderr)
    return out


@dataclass(frozen=True)
class _Reader:
    """The files of a folder or zip: their relative names, and how to read and show one."""

    names: list[str]
    read: Callable[[str], bytes]
    display: Callable[[str], str]


def _ferplus_label_files(names: Iterable[str]) -> list[str]:
    """FER+'s ``FER2013<split>/label.csv`` files among relative paths."""
    return sorted(
        n
        for n in names
        if PurePosixPath(n).name.lower() == ferplus.LABEL_FILE
        and PurePosixPath(n).parent.name.lower() in ferplus.FOLDERS
        and not _ignored_csv(n)
    )


def _read_ferplus(
    reader: _Reader,
    label_files: list[str],
    test_split: str | None,
    strict: bool,
    class_map: ClassMap,
    label_mode: str,
    face: FaceHook | None,
) -> dict[str, Split]:
    """FER+'s generated layout → ``{"train", "test"}`` (those present): each folder's faces labelled from its
    ``label.csv`` (the training folder by ``label_mode``, the others by majority); a row whose image is missing,
    or an image without a row, is an error naming it."""
    parts: dict[str, list[Split]] = {}
    skipped: dict[str, int] = {}
    images_in: dict[str, set[str]] = {}
    for name in reader.names:
        path = PurePosixPath(name)
        if not _ignored(path.parts):
            images_in.setdefault(str(path.parent), set()).add(path.name)
    for label_file in label_files:
        folder = PurePosixPath(label_file).parent
        split, usage = ferplus.FOLDERS[folder.name.lower()]
        if split == "test" and test_split not in (None, "all") and usage != test_split:
            skipped[usage] = skipped.get(usage, 0) + 1
            continue
        shown = reader.display(label_file)
        try:
            text = reader.read(label_file).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise FerflowError(f"{shown}: not a text CSV") from None
        votes = ferplus.parse_label_csv(text, shown)
        present = images_in.get(str(folder), set())
        missing = [n for n in votes.names if n not in present]
        if missing:
            raise FerflowError(
                f"{shown}: the image of row {votes.names.index(missing[0]) + 1}, {missing[0]}, is missing"
            )
        unlabelled = sorted(present - set(votes.names))
        if unlabelled:
            raise FerflowError(f"{reader.display(str(folder / unlabelled[0]))}: image without a row in {shown}")
        mode = label_mode if split == "train" else "majority"
        kept = ferplus.label_faces(votes.counts, mode, class_map, shown)
        print(
            f"{shown}: {len(kept.rows)} of {len(votes.names)} faces labelled ({mode}); {kept.left_out()}",
            file=sys.stderr,
        )
        names = [votes.names[r] for r in kept.rows]
        ids = np.array([f"{folder.name}/{n}" for n in names])
        images = np.empty((len(names), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
        for i, n in enumerate(names):
            key = str(folder / n)
            images[i] = _face(reader.read(key), reader.display(key), strict, face, str(ids[i]))
        parts.setdefault(split, []).append(Split(images, kept.labels, ids, kept.classes, kept.soft, kept.sample))
    if skipped and "test" not in parts:
        raise _filter_error(reader.display(""), str(test_split), skipped, "folders")
    return {split: Split.concat(splits) for split, splits in parts.items()}


def _read_layout(
    reader: _Reader,
    source: str,
    test_split: str | None,
    strict: bool,
    class_map: ClassMap,
    label_mode: str,
    face: FaceHook | None = None,
) -> dict[str, Split]:
    """Whichever layout the files hold: FER+'s label files, an ICML CSV (with FER+'s votes beside it), or class
    folders."""
    label_files = _ferplus_label_files(reader.names)
    if label_files:
        return _read_ferplus(reader, label_files, test_split, strict, class_map, label_mode, face)
    csv_name = _find_csv(reader.names)
    if csv_name is not None:
        votes = next((n for n in reader.names if PurePosixPath(n).name.lower() == ferplus.VOTES_CSV), None)
        return read_icml_csv(
            io.BytesIO(reader.read(csv_name)),
            reader.display(csv_name),
            test_split,
            io.BytesIO(reader.read(votes)) if votes else None,
            class_map,
            label_mode,
        )
    entries = _entries(reader.names, source, test_split, class_map)
    if not entries:
        raise FerflowError(f"{source}: no labelled images found ({EXPECTED})")
    return _splits(entries, reader.read, reader.display, strict, face)


def _load_zip(
    path: Path, test_split: str | None, strict: bool, class_map: ClassMap, label_mode: str, face: FaceHook | None
) -> dict[str, Split]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FerflowError(f"{path}: corrupt or truncated zip archive ({exc})") from None
    with zf:
        names = [i.filename for i in zf.infolist() if not i.is_dir()]
        reader = _Reader(names, zf.read, lambda n: f"{path}:{n}")
        try:
            return _read_layout(reader, str(path), test_split, strict, class_map, label_mode, face)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise FerflowError(f"{path}: corrupt or truncated zip archive ({exc})") from None


def _load_folder(
    root: Path, test_split: str | None, strict: bool, class_map: ClassMap, label_mode: str, face: FaceHook | None
) -> dict[str, Split]:
    names: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__MACOSX")))
        rel = Path(dirpath).relative_to(root).as_posix()
        names += [f if rel == "." else f"{rel}/{f}" for f in filenames]
    reader = _Reader(names, lambda n: (root / n).read_bytes(), lambda n: str(root / n))
    return _read_layout(reader, str(root), test_split, strict, class_map, label_mode, face)


def load_labelled(
    path: str | os.PathLike[str],
    test_split: str | None = "all",
    *,
    strict: bool = False,
    class_map: ClassMap = None,
    label_mode: str = "majority",
    face: FaceHook | None = None,
) -> dict[str, Split]:
    """Labelled 48×48 grayscale faces from a folder, zip or ICML CSV, filtered by ``test_split``, class names
    mapped by ``class_map``, FER+ votes labelled by ``label_mode``, each face found by ``face`` where given (image
    files only; see the module docstring)."""
    _check_test_split(test_split)
    if label_mode not in ferplus.LABEL_MODES:
        raise FerflowError(f"label mode {label_mode!r} is none of {', '.join(ferplus.LABEL_MODES)}")
    p = Path(path)
    if p.is_dir():
        return _load_folder(p, test_split, strict, class_map, label_mode, face)
    if not p.exists():
        raise FerflowError(f"{p}: no such file or folder")
    if p.suffix.lower() == ".csv":
        votes = p.with_name(ferplus.VOTES_CSV)
        return read_icml_csv(p, str(p), test_split, votes if votes.is_file() else None, class_map, label_mode)
    if zipfile.is_zipfile(p) or p.suffix.lower() == ".zip":
        return _load_zip(p, test_split, strict, class_map, label_mode, face)
    raise FerflowError(f"{p}: neither a folder, a zip nor a CSV")
