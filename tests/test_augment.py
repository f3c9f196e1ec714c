"""Offline balancing: targets met, training images only, deterministic, the study's transformations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datastage import make_split, make_stage
from ferflow import cli
from ferflow.preprocess.balance import Transform, balance, random_affines, warp
from ferflow.storage import Split, load_split, read_json

COUNTS = {0: 30, 1: 4, 2: 12, 3: 45, 4: 20, 5: 20, 6: 19}


def _balance(tmp_path: Path, *extra: str) -> int:
    make_stage(tmp_path / "in", COUNTS)
    return cli.main(["balance", "--in-dir", str(tmp_path / "in"), "--out", str(tmp_path / "out"), *extra])


def test_every_class_reaches_the_target_from_train_only(tmp_path: Path) -> None:
    assert _balance(tmp_path, "--settings", '{"min_per_class": 25}', "--seed", "3") == 0
    src, out = tmp_path / "in", tmp_path / "out"
    before, after = load_split(src / "train.npz"), load_split(out / "train.npz")
    counts = read_json(out / "summary.json")["train"]
    assert counts == after.counts()
    assert all(n >= 25 for n in counts.values())
    assert counts["angry"] == 30 and counts["happy"] == 45  # above the target: left whole
    assert counts["disgust"] == 25 and counts["fear"] == 25  # below: filled exactly to the target
    # the original training images come first, unchanged
    assert np.array_equal(after.images[: len(before)], before.images)
    assert list(after.ids[: len(before)]) == list(before.ids)
    # every new image names a training parent of its own class
    train_label = dict(zip(before.ids, before.labels))
    new = after.subset(np.arange(len(before), len(after)))
    for image_id, label in zip(new.ids, new.labels):
        assert image_id.startswith("augment:train/")
        parent, k = image_id[len("augment:") :].rsplit("#", 1)
        assert train_label[parent] == label and int(k) >= 1
    assert len(set(new.ids)) == len(new)
    # parents are used evenly: disgust has 4 images and needs 21 more → each parent used 5 or 6 times
    disgust_parents = [i.rsplit("#", 1)[0] for i, lab in zip(new.ids, new.labels) if lab == 1]
    assert sorted(np.unique(disgust_parents, return_counts=True)[1].tolist()) == [5, 5, 5, 6]
    for name in ("val", "test"):
        assert (out / f"{name}.npz").read_bytes() == (src / f"{name}.npz").read_bytes()
    assert read_json(out / "summary.json")["test"] == read_json(src / "summary.json")["test"]


def test_balancing_is_deterministic_and_seeded(tmp_path: Path) -> None:
    train = make_split(COUNTS, "train", 0)
    a, _ = balance(train, 25, Transform(), seed=5)
    b, _ = balance(train, 25, Transform(), seed=5)
    c, _ = balance(train, 25, Transform(), seed=6)
    assert np.array_equal(a.images, b.images) and list(a.ids) == list(b.ids)
    assert not np.array_equal(a.images, c.images)


def test_target_zero_or_reached_adds_nothing() -> None:
    train = make_split(COUNTS, "train", 0)
    merged, new = balance(train, 4, Transform(), seed=0)
    assert len(new) == 0 and np.array_equal(merged.images, train.images)


def test_identity_transform_leaves_images_unchanged() -> None:
    images = make_split({0: 6}, "x", 1).images
    affines = random_affines(len(images), Transform(0, 0, 0, False), np.random.default_rng(0))
    assert np.array_equal(warp(images, affines), images)


def test_flip_only_mirrors_about_half() -> None:
    images = make_split({0: 200}, "x", 2).images
    out = warp(images, random_affines(len(images), Transform(0, 0, 0, True), np.random.default_rng(0)))
    mirrored = np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images)])
    same = np.array([np.array_equal(o, i) for o, i in zip(out, images)])
    assert (mirrored ^ same).all()
    assert 70 < mirrored.sum() < 130


def test_shift_and_zoom_stay_within_their_ranges() -> None:
    rng = np.random.default_rng(0)
    t = Transform(rotation=15, shift=0.1, zoom=0.1, horizontal_flip=False)
    a = random_affines(5000, t, rng)
    linear, offset = a[:, :, :2], a[:, :, 2]
    # columns of rot @ diag(zx, zy) have norms zx, zy; rotation angle from the first column
    zooms = np.linalg.norm(linear, axis=1)
    assert zooms.min() >= 0.9 - 1e-6 and zooms.max() <= 1.1 + 1e-6
    angles = np.degrees(np.arctan2(linear[:, 1, 0], linear[:, 0, 0]))
    assert np.abs(angles).max() <= 15 + 1e-4 and np.abs(angles).max() > 14
    # shift: |offset| = |shift| (rotation keeps length), 10% of the size = 0.2 normalised units per axis
    assert np.linalg.norm(offset, axis=1).max() <= 0.2 * np.sqrt(2) + 1e-6


def test_shift_moves_content_with_edge_fill() -> None:
    image = np.zeros((1, 48, 48), np.uint8)
    image[0, :, :24] = 200  # left half bright
    shift_right = np.array([[[1, 0, -0.2], [0, 1, 0]]], np.float32)  # output x samples input x - 0.2
    out = warp(image, shift_right)[0]
    assert (out[:, :28] == 200).all() and (out[:, 29:] == 0).all()  # bright edge moved right by 4.8 px
    shift_left = np.array([[[1, 0, 0.2], [0, 1, 0]]], np.float32)
    out = warp(image, shift_left)[0]
    assert (out[:, 44:] == 0).all() and (out[:, :19] == 200).all()  # no black border: nearest fill


def test_rgb_images_are_augmented_per_channel_alike() -> None:
    gray = make_split({0: 3, 1: 1}, "x", 3)
    rgb = Split(np.repeat(gray.images[..., None], 3, -1), gray.labels, gray.ids)
    _, new_gray = balance(gray, 4, Transform(), seed=1)
    _, new_rgb = balance(rgb, 4, Transform(), seed=1)
    assert new_rgb.images.shape[1:] == (48, 48, 3)
    assert np.array_equal(new_rgb.images[..., 1], new_gray.images)


def test_bad_arguments_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["balance", "--in-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 1
    assert "train.npz: split file not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ('{"rotatoin": 3}', "unknown setting rotatoin of ferflow balance (allowed: min_per_class, rotation, "),
        ('{"min_per_class": -1}', "invalid setting min_per_class of ferflow balance: -1 is less than the minimum"),
        ('{"horizontal_flip": "no"}', "invalid setting horizontal_flip of ferflow balance: 'no' is not of type"),
    ],
)
def test_a_bad_setting_is_refused_naming_it_before_any_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], settings: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        _balance(tmp_path, "--settings", settings)
    assert exit_.value.code == 2  # argparse's usage error
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("ferflow balance: error: argument --settings: ")
    assert message in errors[0]
    assert not (tmp_path / "out").exists()
