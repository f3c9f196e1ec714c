"""Acquisition: fetch a dataset from its source into a local cache, then the ``download`` stage.

Sources (:func:`resolve_source`):

- ``kaggle:<owner>/<dataset>``: the Kaggle API (``kaggle`` package). Credentials come from
  ``~/.kaggle/kaggle.json`` (or ``$KAGGLE_CONFIG_DIR/kaggle.json``), from ``KAGGLE_USERNAME`` and
  ``KAGGLE_KEY``, or from a Kaggle access token (``KAGGLE_API_TOKEN``, ``~/.kaggle/access_token``);
  they are checked before the package is imported, and their absence is a one-line error.
- ``http://`` / ``https://`` URL: downloaded with urllib to a temporary name, renamed when complete.
- a local path: a zip, a tar archive (``.tar.gz``, ``.tgz``, ``.tar``, ...), an extracted folder, or
  an ICML CSV file (returned as is). ``ferflow download`` reads a zip in place rather than extracting it.

Downloads are cached in ``<cache_dir>`` (e.g. ``resources/downloads``) and archives extracted once into
``<cache_dir>/extracted/<name>-<sha256 prefix>/`` (extracted into a temporary folder, renamed when
complete). The optional sha256 is checked on the archive (or downloaded file). Extraction is safe: a
member with an absolute path, a ``..`` component, or a link pointing outside the target is refused
with an error naming it.

The ``download`` stage (:func:`run`) then reads the layout (:mod:`ferflow.layouts`) strictly — the
canonical data must be 48×48 grayscale: another size, a colour image, an unknown class folder or an
empty class is refused — carves a stratified, seeded validation split from train (the test split is
never used for model selection) and writes ``train.npz``, ``val.npz``, ``test.npz`` and
``summary.json`` (last) into ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from ferflow.classes import CLASS_NAMES
from ferflow.errors import FerflowError
from ferflow.storage import UMASK, Split, atomic_path, save_stage

TAR_SUFFIXES: tuple[str, ...] = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
CREDENTIALS_HELP = (
    "Kaggle credentials not found: save your API token (kaggle.com → Settings → API → Create New Token) "
    "as ~/.kaggle/kaggle.json, or set the environment variables KAGGLE_USERNAME and KAGGLE_KEY"
)


# ---------------------------------------------------------------------------------------------------
# checksums and archives


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path: Path, expected: str | None) -> str:
    """The file's sha256; an error naming the file and both hashes when it differs from ``expected``."""
    actual = sha256_of(path)
    if expected and actual.lower() != expected.lower():
        raise FerflowError(f"{path}: sha256 mismatch: expected {expected.lower()}, got {actual}")
    return actual


def archive_kind(path: Path) -> str | None:
    """``"zip"``, ``"tar"`` or None, by name first, then by content."""
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(TAR_SUFFIXES):
        return "tar"
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except OSError:
        pass
    return None


def _unsafe(name: str) -> bool:
    """Whether an archive member name would land outside the extraction folder."""
    p = PurePosixPath(name.replace("\\", "/"))
    return p.is_absolute() or ".." in p.parts or (len(name) > 1 and name[1] == ":")


def _link_escapes(member: str, target: str) -> bool:
    """Whether a link at ``member`` pointing to ``target`` resolves outside the extraction folder."""
    target = target.replace("\\", "/")
    if PurePosixPath(target).is_absolute() or (len(target) > 1 and target[1] == ":"):
        return True
    depth = 0
    for part in (PurePosixPath(member).parent / target).parts:
        depth += -1 if part == ".." else 0 if part in (".", "") else 1
        if depth < 0:
            return True
    return False


def _refuse(archive: Path, member: str, why: str) -> FerflowError:
    return FerflowError(f"{archive}: member {member!r} {why}; refused")


def _extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        for info in members:
            if _unsafe(info.filename):
                raise _refuse(archive, info.filename, "would land outside the target folder")
            is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
            if is_link and _link_escapes(info.filename, zf.read(info).decode("utf-8", "replace")):
                raise _refuse(archive, info.filename, "is a symlink pointing outside the target folder")
        zf.extractall(dest)


def _extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for m in members:
            if _unsafe(m.name):
                raise _refuse(archive, m.name, "would land outside the target folder")
            if m.issym() and _link_escapes(m.name, m.linkname):
                raise _refuse(archive, m.name, "is a symlink pointing outside the target folder")
            if m.islnk() and _unsafe(m.linkname):
                raise _refuse(archive, m.name, "is a hard link pointing outside the target folder")
            if m.isdev():
                raise _refuse(archive, m.name, "is a device file")
        tf.extractall(dest, members=members, filter="data")


def extract(archive: Path, cache_dir: Path, digest: str) -> Path:
    """Extract ``archive`` once into ``cache_dir/extracted/<name>-<digest prefix>`` and return that folder."""
    kind = archive_kind(archive)
    if kind is None:
        raise FerflowError(f"{archive}: not a zip or tar archive")
    stem = archive.name
    for suffix in (".zip", *TAR_SUFFIXES):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    target = cache_dir / "extracted" / f"{stem}-{digest[:16]}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp.chmod(0o777 & ~UMASK)  # mkdtemp's 0700 would hide the cache from other users
    try:
        (_extract_zip if kind == "zip" else _extract_tar)(archive, tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not target.is_dir():  # else a concurrent job extracted the same archive first
                raise
    except (zipfile.BadZipFile, tarfile.ReadError, tarfile.CompressionError, zlib.error, EOFError) as exc:
        raise FerflowError(f"{archive}: corrupt or truncated archive ({exc})") from None
    except tarfile.FilterError as exc:
        raise _refuse(archive, exc.tarinfo.name, f"is unsafe ({exc})") from None
    except (tarfile.TarError, OSError) as exc:
        raise FerflowError(f"{archive}: cannot be extracted ({exc})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


# ---------------------------------------------------------------------------------------------------
# sources


def kaggle_credentials_present() -> bool:
    """Whether any credential the Kaggle API accepts is available (checked without importing kaggle)."""
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return True
    if os.environ.get("KAGGLE_API_TOKEN"):
        return True
    home = Path.home()
    dirs = [Path(os.environ["KAGGLE_CONFIG_DIR"])] if os.environ.get("KAGGLE_CONFIG_DIR") else []
    dirs += [home / ".kaggle", Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"]
    return any((d / "kaggle.json").is_file() for d in dirs) or any(
        (home / ".kaggle" / name).is_file() for name in ("access_token", "access_token.txt")
    )


def _download_kaggle(ref: str, cache: Path) -> Path:
    parts = ref.split("/")
    if len(parts) != 2 or not all(parts):
        raise FerflowError(f"kaggle:{ref}: expected kaggle:<owner>/<dataset>")
    target = cache / f"kaggle-{parts[0]}-{parts[1]}.zip"
    if target.is_file():
        return target
    if not kaggle_credentials_present():
        raise FerflowError(CREDENTIALS_HELP)
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError:
        raise FerflowError("source kaggle:... needs the kaggle package: pip install kaggle") from None
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".kaggle.", dir=cache) as tmp:
        try:
            api = KaggleApi()
            api.authenticate()
            api.dataset_download_files(ref, path=tmp, quiet=False, unzip=False)
        except SystemExit:
            raise FerflowError(CREDENTIALS_HELP) from None
        except Exception as exc:  # the Kaggle client raises many types (HTTP, auth, ...)
            raise FerflowError(
                f"kaggle:{ref}: download failed ({type(exc).__name__}: {exc})".replace("\n", " ")
            ) from None
        files = list(Path(tmp).glob("*.zip"))
        if len(files) != 1:
            raise FerflowError(f"kaggle:{ref}: download produced no zip archive")
        os.replace(files[0], target)
    return target


def _download_url(url: str, cache: Path) -> Path:
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name or "download"
    target = cache / f"{hashlib.sha256(url.encode()).hexdigest()[:10]}-{name}"
    if target.is_file():
        return target
    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_path(target) as tmp:
            with open(tmp, "wb") as fh:
                shutil.copyfileobj(response, fh, 1 << 20)
            length = response.headers.get("Content-Length")
            if length is not None and tmp.stat().st_size != int(length):
                raise FerflowError(f"{url}: download truncated ({tmp.stat().st_size} of {length} bytes)")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise FerflowError(f"{url}: download failed ({exc})") from None
    return target


def resolve_source(
    source: str, sha256: str | None, cache_dir: str | os.PathLike[str], *, extract_zip: bool = True
) -> Path:
    """A local folder holding the source's files (archives checked and extracted into ``cache_dir``).

    A local folder is returned as is (``sha256`` cannot apply to it and is refused); a local ICML CSV
    file is returned as is after its sha256 check; any archive is extracted once per content — except
    that with ``extract_zip=False`` a zip is returned as is (:mod:`ferflow.layouts` reads zips directly,
    which spares writing tens of thousands of small files).
    """
    cache = Path(cache_dir)
    if source.startswith("kaggle:"):
        path = _download_kaggle(source[len("kaggle:") :], cache)
    elif source.startswith(("http://", "https://")):
        path = _download_url(source, cache)
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            if sha256:
                raise FerflowError(f"{path}: a sha256 was given but the source is a folder (it applies to archives)")
            return path
        if not path.is_file():
            expected = "kaggle:<owner>/<dataset>, an http(s) URL, or a local zip, tar.gz or folder"
            raise FerflowError(f"{path}: source not found (expected {expected})")
    digest = check_sha256(path, sha256)
    if path.suffix.lower() == ".csv" or (not extract_zip and archive_kind(path) == "zip"):
        return path
    return extract(path, cache, digest)


# ---------------------------------------------------------------------------------------------------
# the download stage


def check_classes(splits: dict[str, Split], source: str) -> None:
    """Refuse a split that lacks a class (an empty class folder or no rows of an emotion)."""
    for name, split in splits.items():
        empty = [c for c, n in split.counts().items() if n == 0]
        if empty:
            raise FerflowError(f"{source}: class {name}/{empty[0]} has no images (every class needs some)")


def split_validation(train: Split, val_fraction: float, seed: int) -> tuple[Split, Split]:
    """Carve a stratified, seeded validation split from train."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(train))
    try:
        keep, val = train_test_split(index, test_size=val_fraction, stratify=train.labels, random_state=seed)
    except ValueError as exc:
        raise FerflowError(
            f"cannot carve a stratified validation split of {val_fraction} from {len(train)} training images ({exc})"
        ) from None
    return train.subset(np.sort(keep)), train.subset(np.sort(val))


def acquire(args: argparse.Namespace) -> dict[str, Split]:
    """The source's train and test splits (strictly checked)."""
    if args.source == "synthetic":
        from ferflow.synthetic import generate

        return generate(args.synthetic_train, args.synthetic_test, args.seed)
    from ferflow.layouts import load_labelled

    local = resolve_source(args.source, args.sha256, args.cache_dir, extract_zip=False)
    data = load_labelled(local, args.test_split, strict=True)
    if "train" not in data or "test" not in data:
        found = ", ".join(sorted(data)) or "no split"
        raise FerflowError(f"{local}: expected train/<class>/ and test/<class>/ folders or an ICML CSV, found {found}")
    if len(data["test"]) == 0:
        raise FerflowError(f"{local}: no {args.test_split} images in the test split")
    check_classes(data, str(local))
    return data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        required=True,
        help="kaggle:<owner>/<dataset> | http(s)://URL | local zip, tar.gz, folder or ICML CSV | synthetic",
    )
    parser.add_argument("--sha256", default=None, help="expected sha256 of the archive (optional)")
    parser.add_argument(
        "--val-fraction", type=float, default=0.1, help="fraction of train carved (stratified) into val"
    )
    parser.add_argument(
        "--test-split",
        default="PublicTest",
        choices=["PublicTest", "PrivateTest", "all"],
        help="which FER2013 test split to keep",
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the validation split (and of source synthetic)")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path("resources/downloads"), help="downloads and extracted archives"
    )
    parser.add_argument("--out", type=Path, required=True, help="stage folder: train/val/test.npz + summary.json")
    parser.add_argument("--synthetic-train", type=int, default=2800, help="training images of source synthetic")
    parser.add_argument("--synthetic-test", type=int, default=700, help="test images of source synthetic")


def run(args: argparse.Namespace) -> int:
    if not 0 < args.val_fraction < 1:
        raise FerflowError(f"--val-fraction {args.val_fraction} is not between 0 and 1")
    data = acquire(args)
    train, val = split_validation(data["train"], args.val_fraction, args.seed)
    splits = {"train": train, "val": val, "test": data["test"]}
    save_stage(args.out, splits)
    width = max(map(len, CLASS_NAMES))
    print(f"{'class':<{width}}  {'train':>6} {'val':>6} {'test':>6}")
    for name in CLASS_NAMES:
        print(f"{name:<{width}}  " + " ".join(f"{splits[s].counts()[name]:>6}" for s in ("train", "val", "test")))
    print(f"{'total':<{width}}  " + " ".join(f"{len(splits[s]):>6}" for s in ("train", "val", "test")))
    print(f"wrote {args.out}/{{train,val,test}}.npz and summary.json")
    return 0
