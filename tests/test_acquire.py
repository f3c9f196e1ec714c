"""Acquisition: sources, checksums, safe extraction and the ``download`` stage."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import re
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferflow import cli
from ferflow.classes import CLASS_NAMES
from ferflow.errors import FerflowError
from ferflow.fetch import CREDENTIALS_HELP, resolve_source
from ferflow.storage import load_stage
from ferflow.synthetic import generate, write_fer_folders

FER2013_TRAIN = {
    "angry": 3995,
    "disgust": 436,
    "fear": 4097,
    "happy": 7215,
    "neutral": 4965,
    "sad": 4830,
    "surprise": 3171,
}
FER2013_TEST = {"angry": 467, "disgust": 56, "fear": 496, "happy": 895, "neutral": 607, "sad": 653, "surprise": 415}


@pytest.fixture(scope="module")
def fer_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small zip in the Kaggle layout (train/<class>/, test/<class>/)."""
    root = tmp_path_factory.mktemp("ferzip")
    write_fer_folders(root / "src", generate(140, 28, seed=11))
    archive = root / "fer.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted((root / "src").rglob("*.png")):
            zf.write(f, f.relative_to(root / "src").as_posix())
    return archive


def zip_with(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def tar_with(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info in members:
            payload = (data or {}).get(info.name)
            if payload is not None:
                info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return path


def png(shape: tuple[int, ...] = (48, 48), seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def nothing_extracted(cache: Path) -> bool:
    return not (cache / "extracted").exists() or not any((cache / "extracted").iterdir())


# --------------------------------------------------------------------------------------------- sources


def test_local_folder_is_returned_as_is(tmp_path: Path) -> None:
    assert resolve_source(str(tmp_path), None, tmp_path / "cache") == tmp_path
    with pytest.raises(FerflowError, match="sha256.*folder"):
        resolve_source(str(tmp_path), "0" * 64, tmp_path / "cache")


def test_missing_source_is_named(tmp_path: Path) -> None:
    with pytest.raises(FerflowError, match="nope.zip: source not found"):
        resolve_source(str(tmp_path / "nope.zip"), None, tmp_path / "cache")


def test_zip_is_extracted_once_per_content(fer_zip: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    digest = hashlib.sha256(fer_zip.read_bytes()).hexdigest()
    folder = resolve_source(str(fer_zip), digest.upper(), cache)
    assert folder.parent == cache / "extracted" and digest[:16] in folder.name
    assert len(list(folder.glob("train/*/*.png"))) == 140
    marker = folder / "marker"
    marker.write_text("kept")
    assert resolve_source(str(fer_zip), None, cache) == folder and marker.exists()


def test_tar_gz_is_extracted(tmp_path: Path) -> None:
    info = tarfile.TarInfo("data/train/happy/a.png")
    archive = tar_with(tmp_path / "data.tgz", [info], {"data/train/happy/a.png": png()})
    folder = resolve_source(str(archive), None, tmp_path / "cache")
    assert (folder / "data" / "train" / "happy" / "a.png").read_bytes() == png()


def test_sha256_mismatch_names_file_and_both_hashes(fer_zip: Path, tmp_path: Path) -> None:
    actual = hashlib.sha256(fer_zip.read_bytes()).hexdigest()
    with pytest.raises(FerflowError) as err:
        resolve_source(str(fer_zip), "ab" * 32, tmp_path / "cache")
    assert str(fer_zip) in str(err.value) and "ab" * 32 in str(err.value) and actual in str(err.value)
    assert nothing_extracted(tmp_path / "cache")


@pytest.mark.parametrize("member", ["../evil.txt", "train/../../evil.txt", "/tmp/evil.txt"])
def test_zip_member_escaping_the_target_is_refused(tmp_path: Path, member: str) -> None:
    archive = zip_with(tmp_path / "slip.zip", {"train/happy/a.png": png(), member: b"owned"})
    with pytest.raises(FerflowError, match=f"member '{member}'.*refused"):
        resolve_source(str(archive), None, tmp_path / "cache")
    assert nothing_extracted(tmp_path / "cache") and not (tmp_path / "evil.txt").exists()


def test_tar_symlink_out_of_the_target_is_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("data/link")
    link.type, link.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
    archive = tar_with(tmp_path / "link.tar.gz", [link])
    with pytest.raises(FerflowError, match="member 'data/link'.*symlink.*refused"):
        resolve_source(str(archive), None, tmp_path / "cache")
    assert nothing_extracted(tmp_path / "cache")


def test_zip_symlink_out_of_the_target_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("data/link")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "../../outside")
    with pytest.raises(FerflowError, match="member 'data/link'.*symlink"):
        resolve_source(str(archive), None, tmp_path / "cache")


@pytest.mark.parametrize("name", ["fer.zip", "fer.tar.gz"])
def test_truncated_archive_is_a_one_line_error(fer_zip: Path, tmp_path: Path, name: str) -> None:
    if name.endswith(".zip"):
        whole = fer_zip.read_bytes()
    else:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            tf.add(fer_zip, "fer.zip")
        whole = buf.getvalue()
    archive = tmp_path / name
    archive.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(FerflowError) as err:
        resolve_source(str(archive), None, tmp_path / "cache")
    assert str(archive) in str(err.value) and "corrupt or truncated" in str(err.value) and "\n" not in str(err.value)
    assert nothing_extracted(tmp_path / "cache")


def test_missing_kaggle_credentials_say_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    monkeypatch.setitem(sys.modules, "kaggle", None)  # importing kaggle before the check would fail differently
    with pytest.raises(FerflowError) as err:
        resolve_source("kaggle:msambare/fer2013", None, tmp_path / "cache")
    message = str(err.value)
    assert message == CREDENTIALS_HELP
    assert "~/.kaggle/kaggle.json" in message and "KAGGLE_USERNAME" in message and "KAGGLE_KEY" in message
    assert (
        cli.main(
            [
                "download",
                "--source",
                "kaggle:msambare/fer2013",
                "--cache-dir",
                str(tmp_path / "c"),
                "--out",
                str(tmp_path / "raw"),
            ]
        )
        == 1
    )
    assert not (tmp_path / "raw").exists()


def test_bad_kaggle_reference(tmp_path: Path) -> None:
    with pytest.raises(FerflowError, match="kaggle:<owner>/<dataset>"):
        resolve_source("kaggle:just-a-name", None, tmp_path)


@pytest.fixture()
def http_root(tmp_path: Path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/www; yields (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_source_is_downloaded_cached_and_extracted(fer_zip: Path, http_root, tmp_path: Path) -> None:
    root, base = http_root
    (root / "fer2013.zip").write_bytes(fer_zip.read_bytes())
    cache = tmp_path / "cache"
    digest = hashlib.sha256(fer_zip.read_bytes()).hexdigest()
    folder = resolve_source(f"{base}/fer2013.zip", digest, cache)
    assert len(list(folder.glob("test/*/*.png"))) == 28
    downloaded = [p for p in cache.iterdir() if p.is_file()]
    assert [p.name.split("-", 1)[1] for p in downloaded] == ["fer2013.zip"]
    (root / "fer2013.zip").unlink()  # cached: no second request needed
    assert resolve_source(f"{base}/fer2013.zip", digest, cache) == folder
    with pytest.raises(FerflowError, match="missing.zip: download failed.*404"):
        resolve_source(f"{base}/missing.zip", None, cache)
    assert sorted(p.name for p in cache.iterdir() if p.is_file()) == sorted(p.name for p in downloaded)


# ---------------------------------------------------------------------------------------- download


def download(tmp_path: Path, source: str, *extra: str) -> tuple[int, Path]:
    out = tmp_path / "raw"
    rc = cli.main(["download", "--source", source, "--cache-dir", str(tmp_path / "cache"), "--out", str(out), *extra])
    return rc, out


def test_download_of_a_truncated_zip_fails_cleanly(fer_zip: Path, tmp_path: Path, capsys) -> None:
    whole = fer_zip.read_bytes()
    (tmp_path / "cut.zip").write_bytes(whole[: len(whole) // 2])
    rc, out = download(tmp_path, str(tmp_path / "cut.zip"))
    err = capsys.readouterr().err
    assert rc == 1 and "cut.zip: corrupt or truncated" in err and err.count("\n") == 1
    assert not out.exists()


def test_download_synthetic_carves_a_stratified_seeded_val_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = '{"synthetic": {"train": 350, "test": 70}, "val_fraction": 0.2}'
    rc, out = download(tmp_path, "synthetic", "--settings", settings, "--seed", "3")
    assert rc == 0
    stage = load_stage(out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary == {name: stage[name].counts() for name in ("train", "val", "test")}
    source = generate(350, 70, seed=3)
    assert set(stage["train"].ids) | set(stage["val"].ids) == set(source["train"].ids)
    assert not set(stage["train"].ids) & set(stage["val"].ids)
    whole = source["train"].counts()
    for name in CLASS_NAMES:  # stratified: each class split 80/20 (to rounding)
        assert abs(summary["val"][name] - 0.2 * whole[name]) <= 1
    np.testing.assert_array_equal(stage["test"].images, source["test"].images)
    assert "total" in capsys.readouterr().out
    rc, again = download(tmp_path / "again", "synthetic", "--settings", settings, "--seed", "3")
    assert list(load_stage(again)["val"].ids) == list(stage["val"].ids)


def test_download_reads_a_zip(fer_zip: Path, tmp_path: Path) -> None:
    rc, out = download(tmp_path, str(fer_zip), "--settings", '{"val_fraction": 0.1}')
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    expected = generate(140, 28, seed=11)
    assert {c: summary["train"][c] + summary["val"][c] for c in CLASS_NAMES} == expected["train"].counts()
    assert summary["test"] == expected["test"].counts()


def bad_fer_folder(tmp_path: Path, extra: dict[str, bytes]) -> Path:
    root = tmp_path / "bad"
    files = {f"{s}/{c}/{s}_{c}.png": png(seed=i) for i, c in enumerate(CLASS_NAMES) for s in ("train", "test")}
    files.update({f"train/{c}/more_{c}.png": png(seed=10 + i) for i, c in enumerate(CLASS_NAMES)})
    for name, data in {**files, **extra}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.mark.parametrize(
    "extra,message",
    [
        ({"train/joy/a.png": png()}, "unknown class folder 'train/joy'"),
        ({"train/happy/wide.png": png((48, 64))}, r"wide\.png: image is 64×48, expected 48×48"),
        ({"test/sad/colour.png": png((48, 48, 3))}, r"colour\.png: RGB image in colour"),
    ],
)
def test_download_refuses_bad_input_without_partial_output(tmp_path: Path, capsys, extra, message) -> None:
    rc, out = download(tmp_path, str(bad_fer_folder(tmp_path, extra)))
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("ferflow download: error: ") and err.count("\n") == 1
    assert re.search(message, err)
    assert not out.exists() or not any(out.iterdir())


def test_download_accepts_the_sound_folder(tmp_path: Path) -> None:
    rc, out = download(tmp_path, str(bad_fer_folder(tmp_path, {})), "--settings", '{"val_fraction": 0.5}')
    assert rc == 0 and json.loads((out / "summary.json").read_text())["val"] == dict.fromkeys(CLASS_NAMES, 1)


def test_download_refuses_an_empty_class(tmp_path: Path, capsys) -> None:
    root = bad_fer_folder(tmp_path, {})
    for f in (root / "test" / "disgust").iterdir():
        f.unlink()
    rc, out = download(tmp_path, str(root))
    assert rc == 1 and "class test/disgust has no images" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.realdata
def test_download_fer2013_exact_counts(fer2013_zip: Path, tmp_path: Path) -> None:
    sha = "be2b12fbc1c6a8394a9d3bc44a4466310ad00c7e9f8dd720a85295598e0ba99a"
    settings = json.dumps({"sha256": sha, "test_split": "PublicTest", "val_fraction": 0.1})
    rc, out = download(tmp_path, str(fer2013_zip), "--settings", settings)
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert {c: summary["train"][c] + summary["val"][c] for c in CLASS_NAMES} == FER2013_TRAIN
    assert summary["test"] == FER2013_TEST
    assert sum(summary["val"].values()) == round(0.1 * 28709)
    test = load_stage(out)["test"]
    assert test.images.shape == (3589, 48, 48) and all(i.startswith("test/") and "PublicTest_" in i for i in test.ids)
