"""The Python API (``from ferflow import EmotionRecognizer``): the README's example as written, every input kind,
test-time augmentation, videos as DataFrames, and the CLI giving the same answers (it is built on the API)."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO
from ferflow import EmotionRecognizer
from ferflow import checkpoint as checkpoints
from ferflow.classes import CLASS_NAMES
from ferflow.cli import main
from ferflow.errors import FerflowError
from ferflow.predict.scenes import drawn_face, face_photo, moving_face_clip
from ferflow.predict.tracking import iou
from ferflow.storage import Split, save_split


def readme_example() -> str:
    """The first Python block of the README's "Python API" section."""
    section = REPO.joinpath("README.md").read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[int, int, int, int]]]:
    path = tmp_path_factory.mktemp("photo") / "photo.jpg"
    return path, face_photo(path, (110, 170))


@pytest.fixture(scope="module")
def recognizer() -> EmotionRecognizer:
    return EmotionRecognizer()


def test_import_ferflow_loads_neither_torch_nor_opencv() -> None:
    code = "import sys, ferflow; print(sorted(m for m in ('torch', 'cv2', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_readme_example_runs_as_written(photo, tmp_path: Path) -> None:
    code = readme_example()
    assert len(code.strip().splitlines()) == 3
    Image.open(photo[0]).save(tmp_path / "photo.jpg")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    found = eval(out.stdout)  # a list of (emotion, box) tuples, as the example prints it
    assert [emotion in CLASS_NAMES for emotion, _ in found] == [True, True]
    assert all(iou(box, truth) > 0.4 for (_, box), truth in zip(found, photo[1]))


def test_a_path_a_pil_image_and_an_array_give_the_same_faces(recognizer, photo) -> None:
    path, boxes = photo
    rgb = np.asarray(Image.open(path).convert("RGB"))
    by_path, by_image, by_array = (recognizer.predict(x) for x in (path, Image.open(path), rgb))
    assert len(by_path) == 2 and by_path == by_image == by_array
    for face, truth in zip(by_path, boxes):
        assert iou(face.box, truth) > 0.4
        assert tuple(face.probabilities) == CLASS_NAMES
        assert sum(face.probabilities.values()) == pytest.approx(1, abs=1e-4)
        assert face.emotion == max(face.probabilities, key=face.probabilities.get)
        assert face.confidence == face.probabilities[face.emotion]
    assert recognizer.predict(np.full((200, 300), 128, np.uint8)) == []  # no face


def test_predict_faces_classifies_crops_as_predict_without_detection(recognizer) -> None:
    crops = [drawn_face(96), np.repeat(drawn_face(60)[..., None], 3, -1)]
    faces = recognizer.predict_faces(crops)
    assert [f.box for f in faces] == [(0, 0, 96, 96), (0, 0, 60, 60)]
    whole = EmotionRecognizer(detect=False)
    assert [whole.predict(c)[0] for c in crops] == faces


def asymmetric_face() -> np.ndarray:
    face = drawn_face(48)
    face[:, :20] //= 2  # not symmetric, so that the mirror differs
    return face


def test_flip_tta_is_the_mean_over_the_face_and_its_mirror() -> None:
    face, single = asymmetric_face(), EmotionRecognizer(tta="none")
    plain = [single.predict_faces([x])[0].probabilities for x in (face, face[:, ::-1])]
    flipped = EmotionRecognizer(tta="flip").predict_faces([face])[0].probabilities
    assert plain[0] != plain[1]
    for name in CLASS_NAMES:
        assert flipped[name] == pytest.approx((plain[0][name] + plain[1][name]) / 2, abs=2e-6)


def test_by_default_the_views_are_those_the_checkpoint_recommends(recognizer, tmp_path: Path) -> None:
    """``tta="auto"`` (the default of the API, ``predict`` and ``evaluate``): the shipped model's card's views;
    a checkpoint without a recommendation is classified without test-time augmentation."""
    shipped = checkpoints.read(checkpoints.SHIPPED)
    assert recognizer.predictor.tta == shipped["tta"] != "none"
    face = asymmetric_face()
    data = tmp_path / "faces.npz"
    save_split(data, Split(np.stack([face, face[:, ::-1]]), np.arange(2), ["a", "b"]))
    for recommended, expected in (("flip", "flip"), (None, "none")):
        path = tmp_path / f"{recommended}.pt"
        checkpoints.save(path, {k: v for k, v in {**shipped, "tta": recommended}.items() if v is not None})
        auto = EmotionRecognizer(path).predict_faces([face])
        assert auto == EmotionRecognizer(path, tta=expected).predict_faces([face])
        assert auto != EmotionRecognizer(path, tta="crops10").predict_faces([face])
        metrics = tmp_path / f"{recommended}.json"
        assert main(["evaluate", "--checkpoint", str(path), "--data", str(data), "--out", str(metrics)]) == 0
        assert json.loads(metrics.read_text())["tta"] == expected


def test_the_cli_gives_the_apis_answers_with_tta(recognizer, photo, capsys) -> None:
    assert main(["predict", str(photo[0]), "--json", "--tta", "flip", "--device", "cpu"]) == 0
    doc = json.loads(capsys.readouterr().out)
    api = EmotionRecognizer(tta="flip", device="cpu").predict(photo[0])
    assert [(tuple(f["box"]), f["probabilities"]) for f in doc["images"][0]["faces"]] == [
        (f.box, f.probabilities) for f in api
    ]


def test_video_returns_the_table_the_cli_writes(recognizer, tmp_path: Path, capsys) -> None:
    clip = tmp_path / "clip.mp4"
    truth = moving_face_clip(clip, np.repeat(drawn_face(150)[..., None], 3, -1), frames=24, fps=12.0)
    table = recognizer.video(clip, fps=6)
    assert list(table.columns) == ["time_s", "frame", "face_id", "x", "y", "w", "h", "emotion", *CLASS_NAMES]
    assert table["frame"].tolist() == list(range(0, 24, 2)) and set(table["face_id"]) == {1}
    assert all(iou(tuple(r[["x", "y", "w", "h"]]), truth[r["frame"]]) > 0.4 for _, r in table.iterrows())
    assert np.allclose(table[list(CLASS_NAMES)].sum(axis=1), 1, atol=1e-4)
    out = tmp_path / "clip.csv"
    assert main(["predict", str(clip), "--fps", "6", "--csv", str(out), "--plot", str(tmp_path / "p.png")]) == 0
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["frame"]) for r in rows] == table["frame"].tolist()
    assert [r["emotion"] for r in rows] == table["emotion"].tolist()
    assert np.allclose([[float(r[c]) for c in CLASS_NAMES] for r in rows], table[list(CLASS_NAMES)], atol=1e-5)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((10, 10), np.float64), "dtype float64"),
        (np.zeros((10, 10, 2), np.uint8), "shape (10, 10, 2)"),
        ([1, 2, 3], "not an image: list"),
        ("missing.jpg", "missing.jpg"),
    ],
)
def test_bad_images_are_refused_in_one_line(recognizer, bad, message) -> None:
    with pytest.raises(FerflowError, match=re.escape(message)):
        recognizer.predict(bad)


def test_unavailable_device_and_unknown_tta_are_refused() -> None:
    with pytest.raises(FerflowError, match="tta 'mirror'"):
        EmotionRecognizer(tta="mirror")
    if not torch.cuda.is_available():
        with pytest.raises(FerflowError, match="'cuda' requested but CUDA is not available"):
            EmotionRecognizer(device="cuda")


def test_a_command_whose_extra_is_missing_says_which_in_one_line(monkeypatch, capsys, tmp_path: Path) -> None:
    data = tmp_path / "test.npz"
    save_split(data, Split(np.zeros((4, 48, 48), np.uint8), np.arange(4), [f"i{k}" for k in range(4)]))
    for module in ("sklearn", "sklearn.metrics"):
        monkeypatch.setitem(sys.modules, module, None)  # as if scikit-learn were not installed
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--data", str(data), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "ferflow evaluate: error: needs sklearn, which the 'pipeline' extra installs: pip install 'ferflow[pipeline]'"
    )
    assert not out.exists()
