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
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from ferflow.classes import ALIASES, CLASS_NAMES, ICML_CODES, canonical, label_of
from ferflow.errors import FerflowError
from ferflow.faces import IMAGE_SIZE, IMAGE_SUFFIXES, to_face48, to_grayscale_array
from ferflow.progress import progress_bar
from ferflow.storage import Split

CSV_NAMES: tuple[str, ...] = ("fer2013.csv", "icml_face_data.csv")
SPLIT_FOLDERS: tuple[str, ...] = ("train", "test")
TEST_SPLITS: tuple[str, ...] = ("PublicTest", "PrivateTest", "all")
EXPECTED = "expected train/<class>/, test/<class>/, <class>/ or an ICML CSV"
GRAY_TOLERANCE = 12
"""Largest difference (0-255 levels) between colour channels for an image to count as gray."""


@dataclass(frozen=True)
class _Entry:
    """One labelled image file: where it is, its split key, label and source id."""

    key: str  # member name in a zip, or path of a file
    split: str
    label: int
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


def _entries(names: Iterable[str], source: str, test_split: str | None) -> list[_Entry]:
    """Classify relative image paths (posix) of a class-folder layout, filtered by ``test_split``."""
    entries: list[_Entry] = []
    layouts: set[str] = set()
    skipped: dict[str, int] = {}  # test split name → images the filter dropped
    labels: dict[str, int | None] = {}  # folder → label (None: dropped class)
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
                cls = canonical(parts[-2])
            except KeyError:
                known = ", ".join([*CLASS_NAMES, *ALIASES])
                raise FerflowError(f"{source}: unknown class folder {folder!r} (known names: {known})") from None
            labels[folder] = label_of(cls) if cls else None
        label = labels[folder]
        if label is None:
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


def _decode(data: bytes, name: str, strict: bool) -> np.ndarray:
    """Bytes of one image file → (48, 48) uint8."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
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


def _splits(
    entries: list[_Entry], read: Callable[[str], bytes], display: Callable[[str], str], strict: bool
) -> dict[str, Split]:
    by_split: dict[str, list[_Entry]] = {}
    for e in entries:
        by_split.setdefault(e.split, []).append(e)
    out: dict[str, Split] = {}
    with progress_bar(len(entries), "decoding") as bar:
        for split, items in by_split.items():
            items.sort(key=lambda e: e.id)
            images = np.empty((len(items), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
            for i, e in enumerate(items):
                images[i] = _decode(read(e.key), display(e.key), strict)
                bar.update()
            labels = np.array([e.label for e in items], dtype=np.int64)
            out[split] = Split(images, labels, np.array([e.id for e in items]))
    return out


def _find_csv(names: Iterable[str]) -> str | None:
    """The ICML CSV among relative paths (fer2013.csv preferred), else None."""
    found = {PurePosixPath(n).name.lower(): n for n in names if not _ignored_csv(n)}
    return next((found[c] for c in CSV_NAMES if c in found), None)


def _ignored_csv(name: str) -> bool:
    return any(p.startswith((".", "__MACOSX")) for p in PurePosixPath(name).parts)


_NON_DIGIT = re.compile(r"[^0-9 ]")


def read_icml_csv(
    handle: io.IOBase | str | os.PathLike[str], source: str, test_split: str | None = "all"
) -> dict[str, Split]:
    """The ICML CSV (emotion, pixels, Usage; column names may carry spaces) → ``{"train", "test"}``;
    ``test_split`` picks the test rows by Usage (None: ``PublicTest``)."""
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
    lut = np.array([label_of(ICML_CODES[c]) for c in sorted(ICML_CODES)], dtype=np.int64)
    labels = lut[codes]
    ids = np.array([f"{Path(source).name}:{u}/{i}" for i, u in enumerate(usage)])
    train = (usage == "Training").to_numpy()
    test_split = test_split or "PublicTest"
    test = (usage == test_split).to_numpy() if test_split != "all" else ~train
    if not test.any() and (~train).any():
        raise _filter_error(source, test_split, usage[~train].value_counts().to_dict(), "rows (Usage)")
    return {name: Split(images[rows], labels[rows], ids[rows]) for name, rows in (("train", train), ("test", test))}


def _load_zip(path: Path, test_split: str | None, strict: bool) -> dict[str, Split]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FerflowError(f"{path}: corrupt or truncated zip archive ({exc})") from None
    with zf:
        names = [i.filename for i in zf.infolist() if not i.is_dir()]
        csv_name = _find_csv(names)
        try:
            if csv_name is not None:
                with zf.open(csv_name) as fh:
                    return read_icml_csv(fh, f"{path}:{csv_name}", test_split)
            entries = _entries(names, str(path), test_split)
            if not entries:
                raise FerflowError(f"{path}: no labelled images found ({EXPECTED})")
            return _splits(entries, zf.read, lambda n: f"{path}:{n}", strict)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise FerflowError(f"{path}: corrupt or truncated zip archive ({exc})") from None


def _load_folder(root: Path, test_split: str | None, strict: bool) -> dict[str, Split]:
    names: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__MACOSX")))
        rel = Path(dirpath).relative_to(root).as_posix()
        names += [f if rel == "." else f"{rel}/{f}" for f in filenames]
    csv_name = _find_csv(names)
    if csv_name is not None:
        return read_icml_csv(root / csv_name, str(root / csv_name), test_split)
    entries = _entries(names, str(root), test_split)
    if not entries:
        raise FerflowError(f"{root}: no labelled images found ({EXPECTED})")
    return _splits(entries, lambda n: (root / n).read_bytes(), lambda n: str(root / n), strict)


def load_labelled(
    path: str | os.PathLike[str], test_split: str | None = "all", *, strict: bool = False
) -> dict[str, Split]:
    """Labelled 48×48 grayscale faces from a folder, zip or ICML CSV, filtered by ``test_split`` (see the
    module docstring)."""
    _check_test_split(test_split)
    p = Path(path)
    if p.is_dir():
        return _load_folder(p, test_split, strict)
    if not p.exists():
        raise FerflowError(f"{p}: no such file or folder")
    if p.suffix.lower() == ".csv":
        return read_icml_csv(p, str(p), test_split)
    if zipfile.is_zipfile(p) or p.suffix.lower() == ".zip":
        return _load_zip(p, test_split, strict)
    raise FerflowError(f"{p}: neither a folder, a zip nor a CSV")
