"""Fetching a data source: local folders and archives, http(s) URLs and Kaggle datasets, with checksums and
safe extraction (shared by the download and AffectNet stages)."""

from __future__ import annotations

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

from ferflow.errors import FerflowError
from ferflow.storage import UMASK, atomic_path

TAR_SUFFIXES: tuple[str, ...] = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


CREDENTIALS_HELP = (
    "Kaggle credentials not found: save your API token (kaggle.com → Settings → API → Create New Token) "
    "as ~/.kaggle/kaggle.json, or set the environment variables KAGGLE_USERNAME and KAGGLE_KEY"
)


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


def _check_zip(archive: Path, zf: zipfile.ZipFile) -> None:
    """Refuse a zip with a member that would land outside the target folder or a symlink pointing outside it
    (checked whether the zip is extracted or read in place, so both refuse the same archives)."""
    for info in zf.infolist():
        if _unsafe(info.filename):
            raise _refuse(archive, info.filename, "would land outside the target folder")
        is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
        if is_link and _link_escapes(info.filename, zf.read(info).decode("utf-8", "replace")):
            raise _refuse(archive, info.filename, "is a symlink pointing outside the target folder")


def _extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        _check_zip(archive, zf)
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
    that with ``extract_zip=False`` a zip is returned as is (:mod:`ferflow.sources` reads zips directly,
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
    if path.suffix.lower() == ".csv":
        return path
    if not extract_zip and archive_kind(path) == "zip":
        try:
            with zipfile.ZipFile(path) as zf:
                _check_zip(path, zf)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise FerflowError(f"{path}: corrupt or truncated archive ({exc})") from None
        return path
    return extract(path, cache, digest)
