"""Long non-training work logs its progress; small work (tests, the tiny preset) stays quiet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ferflow import progress
from ferflow.preprocess.balance import Transform, balance
from ferflow.sources import load_labelled
from ferflow.storage import Split
from ferflow.synthetic import generate, write_fer_folders
from ferflow.tsne import embed_2d


@pytest.fixture(scope="module")
def fer_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fer")
    write_fer_folders(root, generate(28, 14, seed=2))
    return root


def test_decoding_shows_a_bar_from_min_items_on(
    fer_folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    load_labelled(fer_folder)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(progress, "MIN_ITEMS", 40)
    load_labelled(fer_folder)
    err = capsys.readouterr().err
    assert "decoding: 100%" in err and "42/42" in err


def test_balancing_shows_a_bar(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    train = Split(rng.integers(0, 256, (14, 48, 48), dtype=np.uint8), np.arange(14) % 7, [f"i{i}" for i in range(14)])
    monkeypatch.setattr(progress, "MIN_ITEMS", 10)
    _, new = balance(train, 4, Transform(), seed=0)
    err = capsys.readouterr().err
    assert len(new) == 14 and "augmenting: 100%" in err and "14/14" in err


def test_tsne_logs_its_iterations_from_min_items_on(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(40, 8)), np.arange(40) % 7
    embed_2d(features, labels, 4, 5.0, 250, 100, seed=0)
    assert "[t-SNE]" not in capsys.readouterr().out
    monkeypatch.setattr(progress, "MIN_ITEMS", 40)
    embed_2d(features, labels, 4, 5.0, 250, 100, seed=0)
    assert "[t-SNE] Iteration 250" in capsys.readouterr().out
