"""The RGB stage: gray → three identical channels, for every split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datastage import make_split, make_stage
from ferflow import cli
from ferflow.faces import to_rgb
from ferflow.storage import load_stage, read_json


def test_every_split_gets_three_identical_channels(tmp_path: Path) -> None:
    make_stage(tmp_path / "in", {0: 3, 1: 2, 6: 4})
    assert cli.main(["rgb", "--in-dir", str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 0
    gray, rgb = load_stage(tmp_path / "in"), load_stage(tmp_path / "out")
    for name in ("train", "val", "test"):
        assert rgb[name].images.shape == (*gray[name].images.shape, 3)
        for c in range(3):
            assert np.array_equal(rgb[name].images[..., c], gray[name].images)
        assert list(rgb[name].ids) == list(gray[name].ids)
        assert np.array_equal(rgb[name].labels, gray[name].labels)
    assert read_json(tmp_path / "out" / "summary.json") == read_json(tmp_path / "in" / "summary.json")


def test_rgb_input_passes_through() -> None:
    split = to_rgb(make_split({0: 2}, "x", 0))
    assert to_rgb(split) is split


def test_missing_stage_is_an_error(tmp_path: Path) -> None:
    assert cli.main(["rgb", "--in-dir", str(tmp_path / "none"), "--out", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out").exists()
