"""On-disk formats shared by every stage: split files, summaries, atomic writes.

A *split file* is an uncompressed ``.npz`` of arrays (no pickles):

- ``images``: uint8, ``(N, 48, 48)`` grayscale or ``(N, 48, 48, 3)`` RGB;
- ``labels``: int64 ``(N,)`` indices into ``classes``;
- ``ids``: unicode ``(N,)`` source id of each image (e.g. ``train/angry/Training_123.jpg``,
  ``affectnet:anger/image0001.jpg``, ``augment:<parent id>#3``);
- ``classes``: unicode ``(C,)``, the dataset's class names in canonical order (:mod:`ferflow.classes`; a file
  without it holds FER2013's seven);
- optionally ``soft``: float32 ``(N, C)`` probability rows, the training targets of FER+'s soft label modes.

A *data stage directory* holds ``train.npz``, ``val.npz``, ``test.npz`` and ``summary.json``
(``{"train": {class: n, ...}, "val": {...}, "test": {...}}``, every class of the split listed, in its order).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ferflow.classes import CLASS_NAMES, KNOWN_CLASSES
from ferflow.errors import FerflowError

SPLITS: tuple[str, ...] = ("train", "val", "test")
IMAGE_SIZE = 48
"""The side in pixels of every face image a split holds, and of the models' input (:mod:`ferflow.faces`)."""
UMASK = os.umask(0)  # the process's file-creation mask, read once (reading it means setting it)
os.umask(UMASK)


@dataclass
class Split:
    """One split held in memory: images, their labels (indices into ``classes``), their source ids, and, for a
    training split with soft targets (FER+'s vote distributions), one probability row per image."""

    images: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    classes: tuple[str, ...] = CLASS_NAMES
    soft: np.ndarray | None = None
    sample_soft: bool = False  # FER+'s probability mode: a label drawn from each soft row every epoch

    def __post_init__(self) -> None:
        self.images = np.ascontiguousarray(self.images, dtype=np.uint8)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.ids = np.asarray(self.ids, dtype=np.str_)
        self.classes = tuple(str(c) for c in self.classes)
        n = len(self.images)
        if len(self.labels) != n or len(self.ids) != n:
            raise ValueError(
                f"split arrays differ in length: {n} images, {len(self.labels)} labels, {len(self.ids)} ids"
            )
        if self.soft is not None:
            self.soft = np.asarray(self.soft, dtype=np.float32)
            if self.soft.shape != (n, len(self.classes)):
                raise ValueError(f"soft targets have shape {self.soft.shape}, expected ({n}, {len(self.classes)})")

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        """Images per class, every class listed in the split's order."""
        per = np.bincount(self.labels, minlength=len(self.classes))
        return {name: int(per[i]) for i, name in enumerate(self.classes)}

    def subset(self, index: np.ndarray) -> Split:
        """The images at ``index`` (an integer or boolean array)."""
        soft = self.soft[index] if self.soft is not None else None
        return Split(self.images[index], self.labels[index], self.ids[index], self.classes, soft, self.sample_soft)

    def targets(self) -> np.ndarray:
        """The training targets: the soft ones, else each label's one-hot row."""
        if self.soft is not None:
            return self.soft
        return np.eye(len(self.classes), dtype=np.float32)[self.labels]

    @staticmethod
    def concat(parts: list[Split]) -> Split:
        """Concatenate splits of the same image shape and classes (soft targets kept where any part has them,
        one-hot rows standing for the others')."""
        classes = {p.classes for p in parts}
        if len(classes) > 1:
            raise ValueError(f"splits of different classes: {' / '.join(', '.join(c) for c in classes)}")
        soft = np.concatenate([p.targets() for p in parts]) if any(p.soft is not None for p in parts) else None
        return Split(
            np.concatenate([p.images for p in parts]),
            np.concatenate([p.labels for p in parts]),
            np.concatenate([p.ids for p in parts]),
            parts[0].classes,
            soft,
            any(p.sample_soft for p in parts),
        )


def file_digest(path: Path) -> str:
    """A digest of a file's bytes (the teacher checkpoint or soft labels of a distilled run)."""
    return hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()


def split_digest(*splits: Split) -> str:
    """A digest of splits' images and labels: a resumed run, a search or soft labels never mix datasets."""
    digest = hashlib.blake2b(digest_size=16)
    for split in splits:
        digest.update(split.images.tobytes())
        digest.update(split.labels.tobytes())
    return digest.hexdigest()


FILE_KINDS = {
    stat.S_IFREG: "a regular file",
    stat.S_IFDIR: "a folder",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}


def special_kind(path: str | os.PathLike[str], folder: bool = False) -> str | None:
    """What ``path`` is when it exists (through symlinks) but is not a regular file (``folder``: not a folder),
    such as ``"a FIFO"`` or ``"a character device"``; None when it is what is expected or does not exist."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISDIR(mode) if folder else stat.S_ISREG(mode):
        return None
    return FILE_KINDS.get(stat.S_IFMT(mode), "a special file")


def check_readable(path: str | os.PathLike[str]) -> None:
    """Refuse an input that exists but is not a regular file: a FIFO or a device would block or never end."""
    kind = special_kind(path)
    if kind is not None:
        raise FerflowError(f"{path}: unreadable ({kind}, not a regular file)")


def check_outputs(
    outputs: Iterable[str | os.PathLike[str] | None],
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    *,
    folder: bool = False,
) -> None:
    """Refuse outputs that would destroy something: one that exists but is not a regular file (``folder``: not
    a folder), such as a device, a FIFO or a symlink to one; one that is one of ``inputs`` (through symlinks and
    hard links) or, for a folder, contains one; two outputs that are the same file. ``None`` entries are
    skipped. Every command calls it before its work, so a refusal leaves nothing behind."""
    sources = {_identity(Path(i)): Path(i) for i in inputs if i is not None}
    seen: dict[object, Path] = {}
    for out in (Path(o) for o in outputs if o is not None):
        kind = special_kind(out, folder)
        if kind is not None:
            expected = "a folder" if folder else "a regular file"
            raise FerflowError(f"{out}: exists and is {kind}, not {expected}; refused as an output")
        identity = _identity(out)
        if identity in sources:
            raise FerflowError(f"{out}: the output is the input {sources[identity]}; give another output path")
        if folder:
            resolved = out.resolve()
            inside = next((i for i in sources.values() if resolved in i.resolve().parents), None)
            if inside is not None:
                raise FerflowError(f"{out}: the output contains the input {inside}; give another output path")
        if identity in seen:
            raise FerflowError(f"{out}: given as two outputs (also {seen[identity]})")
        seen[identity] = out


def _identity(path: Path) -> object:
    """What makes two paths the same file: device and inode where it exists (through symlinks and hard links),
    else the resolved path."""
    try:
        st = os.stat(path)
    except OSError:
        return path.resolve()
    return (st.st_dev, st.st_ino)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds. A ``path`` that
    exists but is not a regular file (a folder, a device, a FIFO, a symlink to one) is refused, never replaced."""
    check_outputs([path])
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise FerflowError(f"{exc.filename}: not a folder, so {target} cannot be written") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~UMASK)  # mkstemp creates 0600; give outputs the usual mode
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write indented JSON atomically."""
    write_text(path, json.dumps(data, indent=2) + "\n")


def parse_json_object(text: str, what: str) -> dict[str, Any]:
    """A JSON object given as text (a command-line option); a one-line error naming ``what`` otherwise (a key
    given twice, NaN or Infinity, nesting too deep for Python included)."""
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise FerflowError(f"{what}: not valid JSON ({exc})") from None
    except ValueError as exc:
        raise FerflowError(f"{what}: {exc}") from None
    except RecursionError:
        raise FerflowError(f"{what}: nested too deeply") from None
    if not isinstance(value, dict):
        raise FerflowError(f"{what}: expected a JSON object")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict; a key given twice is refused (the last would win silently)."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"key {key!r} given twice")
        found[key] = value
    return found


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read JSON, with a one-line error naming the file when it is missing or malformed."""
    check_readable(path)
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FerflowError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FerflowError(f"{path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise FerflowError(f"{path}: unreadable ({exc.strerror or exc})") from None


def save_split(path: str | os.PathLike[str], split: Split) -> None:
    """Write a split file atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            extra = {"soft": split.soft, "sample_soft": np.array(split.sample_soft)} if split.soft is not None else {}
            np.savez(
                fh, images=split.images, labels=split.labels, ids=split.ids, classes=np.array(split.classes), **extra
            )


def load_split(path: str | os.PathLike[str]) -> Split:
    """Read a split file (never unpickles) and check it holds what the format says: uint8 images of 48×48
    pixels (gray or 3 channels), labels of its classes (FER2013's seven where it stores none) and, if any, soft
    targets that are probability rows."""
    check_readable(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            images, labels, ids = data["images"], data["labels"], data["ids"]
            classes = tuple(str(c) for c in data["classes"]) if "classes" in data else CLASS_NAMES
            soft = data["soft"] if "soft" in data else None
            sample_soft = bool(data["sample_soft"]) if "sample_soft" in data else False
    except FileNotFoundError:
        raise FerflowError(f"{path}: split file not found") from None
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise FerflowError(f"{path}: not a ferflow split file ({exc})") from None
    problem = split_problem(images, labels, classes, soft)
    if problem:
        raise FerflowError(f"{path}: not a ferflow split file ({problem})")
    try:
        return Split(images, labels, ids, classes, soft, sample_soft)
    except ValueError as exc:
        raise FerflowError(f"{path}: not a ferflow split file ({exc})") from None


def split_problem(
    images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...] = CLASS_NAMES, soft: np.ndarray | None = None
) -> str | None:
    """What keeps ``images`` and ``labels`` from being a split's arrays, or None."""
    if images.dtype != np.uint8:
        return f"images are {images.dtype}, expected uint8 (0-255)"
    if images.ndim not in (3, 4) or images.shape[1:3] != (IMAGE_SIZE, IMAGE_SIZE) or images.shape[4:] not in ((), (3,)):
        return f"images have shape {images.shape}, expected (N, {IMAGE_SIZE}, {IMAGE_SIZE}[, 3])"
    if labels.dtype.kind not in "iu":
        return f"labels are {labels.dtype}, expected integers"
    if not classes or len(set(classes)) != len(classes) or not set(classes) <= set(KNOWN_CLASSES):
        return f"classes {list(classes)} are not distinct names among {', '.join(KNOWN_CLASSES)}"
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        return f"labels outside 0..{len(classes) - 1}"
    if soft is not None:
        if soft.shape != (len(labels), len(classes)) or soft.dtype.kind != "f":
            return f"soft targets of shape {soft.shape}, expected ({len(labels)}, {len(classes)}) floats"
        if not np.isfinite(soft).all() or (soft < 0).any() or not np.allclose(soft.sum(1), 1, atol=1e-3):
            return "soft targets are not probability rows"
    return None


def summary_of(splits: dict[str, Split]) -> dict[str, dict[str, int]]:
    """The per-class counts of each split, in the summary.json shape."""
    return {name: splits[name].counts() for name in SPLITS if name in splits}


def save_stage(out_dir: str | os.PathLike[str], splits: dict[str, Split]) -> None:
    """Write a whole data stage directory: the three split files, then summary.json last."""
    out = Path(out_dir)
    missing = [s for s in SPLITS if s not in splits]
    if missing:
        raise ValueError(f"stage lacks splits {missing}")
    for name in SPLITS:
        save_split(out / f"{name}.npz", splits[name])
    write_json(out / "summary.json", summary_of(splits))


def load_stage(stage_dir: str | os.PathLike[str]) -> dict[str, Split]:
    """Read the three split files of a data stage directory."""
    return {name: load_split(Path(stage_dir) / f"{name}.npz") for name in SPLITS}


def copy_file(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Copy a file atomically (used for splits a stage passes through unchanged)."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
