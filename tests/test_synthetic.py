"""The embedded synthetic datasets: FER-like splits and the AffectNet-like folder."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferflow import cli
from ferflow.classes import CLASS_NAMES
from ferflow.errors import FerflowError
from ferflow.sources import load_labelled
from ferflow.synthetic import FER2013_TRAIN_COUNTS, class_counts, generate, write_affectnet_like


@pytest.fixture(scope="module")
def small():
    return generate(280, 70, seed=7)


def test_shapes_ids_and_determinism(small) -> None:
    train, test = small["train"], small["test"]
    assert train.images.shape == (280, 48, 48) and train.images.dtype == np.uint8
    assert test.images.shape == (70, 48, 48)
    assert len(set(train.ids) | set(test.ids)) == 350
    again = generate(280, 70, seed=7)
    for split in ("train", "test"):
        np.testing.assert_array_equal(again[split].images, small[split].images)
        np.testing.assert_array_equal(again[split].labels, small[split].labels)
    other = generate(280, 70, seed=8)
    assert not np.array_equal(other["train"].images, train.images)


def test_images_vary_and_use_the_range(small) -> None:
    images = small["train"].images.astype(float)
    assert images.std(axis=(1, 2)).min() > 5  # no blank faces
    assert images.mean(axis=(1, 2)).std() > 10  # lighting and skin tones vary
    assert np.abs(images[0] - images[1]).mean() > 5


def test_class_imbalance_follows_fer2013() -> None:
    counts = class_counts(3500)
    assert counts.sum() == 3500
    share = counts / counts.sum()
    expected = np.array([FER2013_TRAIN_COUNTS[c] for c in CLASS_NAMES]) / sum(FER2013_TRAIN_COUNTS.values())
    np.testing.assert_allclose(share, expected, atol=1e-3)
    assert CLASS_NAMES[counts.argmin()] == "disgust" and CLASS_NAMES[counts.argmax()] == "happy"
    assert 0.01 < share[CLASS_NAMES.index("disgust")] < 0.02


def test_every_class_present_in_small_splits(small) -> None:
    assert class_counts(14).tolist() == [2] * 7
    assert min(small["test"].counts().values()) >= 2
    assert small["train"].counts() == dict(zip(CLASS_NAMES, class_counts(280).tolist()))
    with pytest.raises(FerflowError, match="too small"):
        class_counts(13)


def test_affectnet_like_folder(tmp_path: Path) -> None:
    root = write_affectnet_like(tmp_path, per_class=40, seed=3)
    assert root == tmp_path / "affectnet"
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg"))
    assert len(files) == 120 and {f.split("/")[0] for f in files} == {"anger", "disgust", "surprise"}
    with Image.open(root / files[0]) as image:
        assert image.size == (96, 96) and image.mode == "RGB"
    with open(root / "labels.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["", "pth", "label", "relFCs"]
    listed = {r[1]: r[2] for r in rows[1:]}
    assert set(listed) < set(files) and len(listed) < len(files)  # a few files absent from the CSV
    disagree = sum(path.split("/")[0] != label for path, label in listed.items()) / len(listed)
    assert 0.1 < disagree < 0.4
    assert all(0 < float(r[3]) <= 1 for r in rows[1:])
    data = load_labelled(root)["all"]
    assert data.counts() == {"angry": 40, "disgust": 40, "surprise": 40}  # the classes the folders hold
    digest = lambda d: hashlib.sha256(b"".join(p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file())).hexdigest()  # noqa: E731
    first = digest(root)
    assert digest(write_affectnet_like(tmp_path / "again", per_class=40, seed=3)) == first
    assert write_affectnet_like(tmp_path, per_class=40, seed=3) == root and digest(root) == first  # replaced
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_writes_kaggle_layout(tmp_path: Path, small) -> None:
    out = tmp_path / "fer"
    assert cli.main(["synthetic", "--out", str(out), "--train", "280", "--test", "70", "--seed", "7"]) == 0
    assert len(list(out.glob("train/*/Training_*.png"))) == 280
    loaded = load_labelled(out, "PublicTest")
    for split in ("train", "test"):
        assert loaded[split].counts() == small[split].counts()
        assert sorted(map(bytes, loaded[split].images)) == sorted(map(bytes, small[split].images))
    assert cli.main(["synthetic", "--out", str(out), "--train", "280"]) == 1  # refuses a non-empty folder
    assert cli.main(["synthetic", "--kind", "affectnet", "--out", str(tmp_path / "aff"), "--per-class", "5"]) == 0
    assert len(list((tmp_path / "aff" / "affectnet").rglob("*.jpg"))) == 15
