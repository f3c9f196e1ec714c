"""The model shipped in the package: predict and evaluate use it without --checkpoint; its model card's
PublicTest numbers are what evaluating it gives."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ferflow import checkpoint, models
from ferflow.cli import main as ferflow

CARD = checkpoint.SHIPPED.with_name("MODEL_CARD.md")
needs_shipped = pytest.mark.skipif(not checkpoint.SHIPPED.is_file(), reason="no model shipped in ferflow/assets/")


def test_without_a_shipped_model_predict_and_evaluate_say_to_pass_a_checkpoint(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(checkpoint, "SHIPPED", tmp_path / "assets" / "fernetfast.pt")
    photo = tmp_path / "x.jpg"
    photo.write_bytes(b"")
    for argv in (["predict", str(photo)], ["evaluate", "--data", str(tmp_path), "--out", str(tmp_path / "m.json")]):
        assert ferflow(argv) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "no model is shipped" in err and "--checkpoint" in err
    assert not (tmp_path / "m.json").exists()


@needs_shipped
def test_the_shipped_model_is_compact_and_loads_with_weights_only() -> None:
    assert checkpoint.SHIPPED.stat().st_size < 5_000_000
    model, ckpt = checkpoint.load_model(checkpoint.SHIPPED)  # torch.load(weights_only=True)
    assert models.count_parameters(model) < 500_000
    assert ckpt["classes"] == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    assert CARD.is_file()


@needs_shipped
@pytest.mark.realdata
def test_evaluating_the_shipped_model_gives_its_model_cards_numbers(fer2013_zip: Path, tmp_path: Path) -> None:
    """The card's first PublicTest row states accuracy and macro-F1 (%, two decimals) with the test-time views
    the checkpoint recommends, which evaluate without --checkpoint and --tta uses."""
    card = re.search(r"(PublicTest[^|]*)\|\s*([\d.]+) %\s*\|\s*([\d.]+) %", CARD.read_text())
    assert card, "the model card has no PublicTest row"
    assert f"`--tta {checkpoint.read(checkpoint.SHIPPED)['tta']}`" in card.group(1)
    out = tmp_path / "metrics.json"
    assert ferflow(["evaluate", "--data", str(fer2013_zip), "--split", "PublicTest", "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["n_images"] == 3589
    # fp32 kernels differ between CPU kinds (AVX2, AVX-512): allow two borderline faces to flip. One face is
    # 0.028 points of accuracy and up to 0.2 points of macro-F1 (the 56 disgust faces weigh 1/7 of it).
    assert metrics["accuracy"] * 100 == pytest.approx(float(card.group(2)), abs=0.06)
    assert metrics["macro_f1"] * 100 == pytest.approx(float(card.group(3)), abs=0.4)
