"""Split files, stage directories and atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ferflow.classes import CLASS_NAMES, FERPLUS_CLASSES, canonical, label_of
from ferflow.errors import FerflowError
from ferflow.storage import Split, atomic_path, load_split, load_stage, save_split, save_stage


def _split(n: int, seed: int = 0, rgb: bool = False) -> Split:
    rng = np.random.default_rng(seed)
    shape = (n, 48, 48, 3) if rgb else (n, 48, 48)
    return Split(rng.integers(0, 256, shape, dtype=np.uint8), rng.integers(0, 7, n), [f"img{i}" for i in range(n)])


def test_split_round_trip(tmp_path: Path) -> None:
    split = _split(20, rgb=True)
    save_split(tmp_path / "s.npz", split)
    back = load_split(tmp_path / "s.npz")
    assert np.array_equal(back.images, split.images) and back.images.dtype == np.uint8
    assert np.array_equal(back.labels, split.labels)
    assert list(back.ids) == list(split.ids)


def test_stage_summary_lists_every_class_in_canonical_order(tmp_path: Path) -> None:
    splits = {"train": _split(30, 1), "val": _split(5, 2), "test": _split(7, 3)}
    save_stage(tmp_path, splits)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert list(summary) == ["train", "val", "test"]
    for name, split in splits.items():
        assert list(summary[name]) == list(CLASS_NAMES)
        assert sum(summary[name].values()) == len(split)
        assert summary[name]["angry"] == int((split.labels == 0).sum())
    assert len(load_stage(tmp_path)["test"]) == 7


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_load_split_rejects_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(FerflowError, match="bad.npz"):
        load_split(bad)
    with pytest.raises(FerflowError, match="missing.npz"):
        load_split(tmp_path / "missing.npz")


def test_split_length_mismatch_is_refused() -> None:
    with pytest.raises(ValueError):
        Split(np.zeros((3, 48, 48), np.uint8), [0, 1], ["a", "b", "c"])


def test_class_names_and_aliases() -> None:
    assert CLASS_NAMES == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert canonical("Anger") == "angry" and canonical("contempt") == "contempt"  # FER+'s eighth class
    assert canonical("contempt", {"contempt": None}) == "" and canonical("joy", {"Joy": "happy"}) == "happy"
    assert label_of("surprise") == 6 and label_of("surprise", FERPLUS_CLASSES) == 7
    with pytest.raises(KeyError, match="bored"):
        canonical("bored")
