"""ferflow evaluate / embed: metrics on a hand-computable case, every input layout, refusals."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from ferflow import checkpoint, cli, models
from ferflow.classes import CLASS_NAMES, ICML_CODES
from ferflow.faces import to_model_input
from ferflow.storage import Split, load_split, save_split

LEVELS = np.array([20 + 30 * k for k in range(len(CLASS_NAMES))])
"""Gray level of each class's images; the toy model below predicts the class whose level is nearest."""


class BrightnessNet(nn.Module):
    """Predicts the class whose gray level is nearest to the image's mean (known predictions)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 7, dropout: float = 0.0) -> None:
        super().__init__()
        centres = to_model_input(LEVELS.astype(np.uint8).reshape(-1, 1, 1), 1).flatten()
        self.register_buffer("centres", centres)
        self.scale = nn.Parameter(torch.tensor(100.0))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x.mean(dim=(1, 2, 3)), x.std(dim=(1, 2, 3))], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.scale * (x.mean(dim=(1, 2, 3))[:, None] - self.centres[None, :]) ** 2


# The hand-computable case: 3 well-lit images per class, plus 2 angry images as bright as happy
# and 1 sad image as bright as neutral (24 images, 21 right).
CASE = [(k, k) for k in range(7) for _ in range(3)] + [(0, 3), (0, 3), (5, 4)]  # (true label, brightness class)
EXPECTED_F1 = {
    "angry": 0.75,
    "disgust": 1.0,
    "fear": 1.0,
    "happy": 0.75,
    "neutral": 6 / 7,
    "sad": 6 / 7,
    "surprise": 1.0,
}


@pytest.fixture
def toy_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(models._REGISTRY, "brightness", models.Entry(f"{__name__}:BrightnessNet"))
    path = tmp_path / "toy.pt"
    checkpoint.save(
        path,
        checkpoint.make(BrightnessNet(), "brightness", {"in_channels": 1, "num_classes": 7}, experiment="toy", epoch=3),
    )
    return path


def case_split() -> Split:
    images = np.stack([np.full((48, 48), LEVELS[b], np.uint8) for _, b in CASE])
    return Split(images, np.array([t for t, _ in CASE]), np.array([f"img{i:02d}" for i in range(len(CASE))]))


def write_class_folders(root: Path, prefix: str = "", name: str = "PublicTest") -> None:
    """The case as odd-size RGB images (60×80) in ``<root>/<prefix><class>/<name>_<i>.png``."""
    for i, (true, bright) in enumerate(CASE):
        folder = root / f"{prefix}{CLASS_NAMES[true]}"
        folder.mkdir(parents=True, exist_ok=True)
        level = int(LEVELS[bright])
        Image.new("RGB", (60, 80), (level, level, level)).save(folder / f"{name}_{i:02d}.png")


def evaluate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["evaluate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_case_metrics(metrics: dict) -> None:
    assert metrics["n_images"] == len(CASE)
    assert metrics["accuracy"] == pytest.approx(21 / 24)
    assert metrics["macro_f1"] == pytest.approx(sum(EXPECTED_F1.values()) / 7)
    for name, f1 in EXPECTED_F1.items():
        assert metrics["per_class"][name]["f1"] == pytest.approx(f1), name
    assert metrics["per_class"]["angry"] == pytest.approx({"precision": 1.0, "recall": 0.6, "f1": 0.75, "support": 5})
    assert metrics["per_class"]["happy"]["precision"] == pytest.approx(0.6)
    expected = np.diag([3, 3, 3, 3, 3, 3, 3])
    expected[0, 3] = 2
    expected[5, 4] = 1
    assert np.array_equal(metrics["confusion"], expected)
    assert metrics["confusion_normalized"][0][3] == pytest.approx(0.4)
    assert metrics["classes"] == list(CLASS_NAMES)


def test_split_file_hand_computed(tmp_path: Path, toy_checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "test.npz"
    save_split(data, case_split())
    out = tmp_path / "out"
    code, stdout, _ = evaluate(
        capsys,
        "--checkpoint",
        str(toy_checkpoint),
        "--data",
        str(data),
        "--out",
        str(out / "metrics.json"),
        "--predictions",
        str(out / "pred.csv"),
        "--per-class",
        str(out / "per_class.csv"),
        "--confusion",
        str(out / "confusion.csv"),
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert_case_metrics(metrics)
    assert metrics["parameters"] == 1 and metrics["arch"] == "brightness" and metrics["epoch"] == 3
    assert stdout.strip().splitlines()[-1].startswith(f"accuracy {21 / 24:.4f}  macro-F1 {metrics['macro_f1']:.4f}")

    predictions = pd.read_csv(out / "pred.csv")
    assert list(predictions["id"]) == [f"img{i:02d}" for i in range(len(CASE))]
    assert list(predictions["predicted"]) == [CLASS_NAMES[b] for _, b in CASE]
    assert list(predictions["true"]) == [CLASS_NAMES[t] for t, _ in CASE]
    probs = predictions[[f"p_{c}" for c in CLASS_NAMES]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    per_class = pd.read_csv(out / "per_class.csv").set_index("class")
    assert per_class.loc["sad", "recall"] == pytest.approx(0.75) and per_class.loc["sad", "support"] == 4
    confusion = pd.read_csv(out / "confusion.csv", index_col="true")
    assert confusion.loc["angry", "happy"] == 2 and confusion.to_numpy().sum() == len(CASE)


def test_class_folders_zip_and_odd_sizes(
    tmp_path: Path, toy_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "faces"
    write_class_folders(folder, prefix="test/")
    write_class_folders(folder, prefix="train/")  # ignored: the test split is evaluated
    archive = tmp_path / "mine.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # <class>/*.png at the top
        for path in sorted((folder / "test").rglob("*.png")):
            zf.write(path, path.relative_to(folder / "test").as_posix())
    for data in (folder, archive):
        out = tmp_path / f"{data.name}.json"
        code, _, err = evaluate(capsys, "--checkpoint", str(toy_checkpoint), "--data", str(data), "--out", str(out))
        assert code == 0, err
        assert_case_metrics(json.loads(out.read_text()))


def test_every_labelled_image_is_scored_unless_a_split_is_asked(
    tmp_path: Path, toy_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder of PrivateTest_*.png is scored whole; --split PublicTest empties it, and the error says so."""
    folder = tmp_path / "private"
    write_class_folders(folder, prefix="test/", name="PrivateTest")
    out = tmp_path / "metrics.json"
    code, _, err = evaluate(capsys, "--checkpoint", str(toy_checkpoint), "--data", str(folder), "--out", str(out))
    assert code == 0, err
    assert_case_metrics(json.loads(out.read_text()))
    out.unlink()
    code, _, err = evaluate(
        capsys, "--checkpoint", str(toy_checkpoint), "--data", str(folder), "--out", str(out), "--split", "PublicTest"
    )
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert f"{folder}: the split filter 'PublicTest' kept none of the test images (dropped: 24 PrivateTest)" in err
    assert not out.exists()
    code, _, err = evaluate(
        capsys, "--checkpoint", str(toy_checkpoint), "--data", str(folder), "--out", str(out), "--split", "PrivateTest"
    )
    assert code == 0, err
    assert_case_metrics(json.loads(out.read_text()))


def test_icml_csv(tmp_path: Path, toy_checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code_of = {name: code for code, name in ICML_CODES.items()}
    path = tmp_path / "fer2013.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["emotion", "pixels", "Usage"])
        for true, bright in CASE:
            writer.writerow([code_of[CLASS_NAMES[true]], " ".join([str(LEVELS[bright])] * 2304), "PublicTest"])
        for usage in ("Training", "PrivateTest"):  # not evaluated: the CSV's test rows are its PublicTest rows
            writer.writerow([code_of["happy"], " ".join(["20"] * 2304), usage])
    out = tmp_path / "metrics.json"
    code, _, err = evaluate(capsys, "--checkpoint", str(toy_checkpoint), "--data", str(path), "--out", str(out))
    assert code == 0, err
    assert_case_metrics(json.loads(out.read_text()))
    code, stdout, _ = evaluate(capsys, "--checkpoint", str(toy_checkpoint), "--data", str(path), "--split", "all")
    assert code == 0 and f"{len(CASE) + 1} images" in stdout


def test_real_architecture_rgb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 3-channel resnet checkpoint on RGB split images: metrics agree with its predictions CSV."""
    torch.manual_seed(0)
    model = models.build("resnet", in_channels=3, num_classes=7, dropout=0.0)
    ckpt = tmp_path / "best.pt"
    checkpoint.save(ckpt, checkpoint.make(model, "resnet", {"in_channels": 3, "num_classes": 7, "dropout": 0.0}))
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (30, 48, 48), dtype=np.uint8)
    data = tmp_path / "test.npz"
    save_split(data, Split(np.repeat(gray[..., None], 3, axis=3), np.arange(30) % 7, [f"i{i}" for i in range(30)]))
    code, _, err = evaluate(
        capsys,
        "--checkpoint",
        str(ckpt),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "m.json"),
        "--predictions",
        str(tmp_path / "p.csv"),
        "--batch-size",
        "8",
    )
    assert code == 0, err
    from sklearn.metrics import accuracy_score, f1_score

    metrics = json.loads((tmp_path / "m.json").read_text())
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert metrics["accuracy"] == pytest.approx(accuracy_score(predictions["true"], predictions["predicted"]))
    assert metrics["macro_f1"] == pytest.approx(
        f1_score(predictions["true"], predictions["predicted"], average="macro")
    )
    assert metrics["parameters"] == models.count_parameters(model)
    with torch.no_grad():
        expected = model.eval()(to_model_input(load_split(data).images, 3)).argmax(1).numpy()
    assert list(predictions["predicted"]) == [CLASS_NAMES[i] for i in expected]


@pytest.mark.parametrize("kind", ["missing", "not_ferflow", "not_torch"])
def test_refuses_bad_checkpoints(tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "test.npz"
    save_split(data, case_split())
    ckpt = tmp_path / "model.pt"
    if kind == "not_ferflow":
        torch.save({"state_dict": {"w": torch.zeros(2)}}, ckpt)
    elif kind == "not_torch":
        ckpt.write_text("hello")
    out = tmp_path / "metrics.json"
    code, _, err = evaluate(capsys, "--checkpoint", str(ckpt), "--data", str(data), "--out", str(out))
    assert code == 1
    assert err.startswith("ferflow evaluate: error: ") and str(ckpt) in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("kind", ["missing", "garbage_zip", "garbage_npz"])
def test_refuses_unreadable_data(
    tmp_path: Path, toy_checkpoint: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / {"missing": "nothing", "garbage_zip": "faces.zip", "garbage_npz": "test.npz"}[kind]
    if kind != "missing":
        data.write_bytes(b"\x00not an archive" * 10)
    out = tmp_path / "metrics.json"
    code, _, err = evaluate(capsys, "--checkpoint", str(toy_checkpoint), "--data", str(data), "--out", str(out))
    assert code == 1
    assert err.startswith("ferflow evaluate: error: ") and data.name in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_embed_writes_tsne_of_the_split(
    tmp_path: Path, toy_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(1)
    split = case_split()
    noisy = np.clip(split.images.astype(int) + rng.integers(-5, 6, split.images.shape), 0, 255)
    data = tmp_path / "test.npz"
    save_split(data, Split(noisy, split.labels, split.ids))
    out = tmp_path / "tsne.csv"
    code = cli.main(
        [
            "embed",
            "--checkpoint",
            str(toy_checkpoint),
            "--data",
            str(data),
            "--out",
            str(out),
            "--settings",
            '{"pca_components": 2, "perplexity": 5, "max_iter": 250, "max_points": 20}',
        ]
    )
    assert code == 0, capsys.readouterr().err
    coords = pd.read_csv(out)
    assert len(coords) == 20 and coords["index"].is_unique
    assert list(coords["label"]) == list(split.labels[coords["index"]])
    assert np.isfinite(coords[["x", "y"]].to_numpy()).all()
    again = tmp_path / "again.csv"
    cli.main(
        [
            "embed",
            "--checkpoint",
            str(toy_checkpoint),
            "--data",
            str(data),
            "--out",
            str(again),
            "--settings",
            '{"pca_components": 2, "perplexity": 5, "max_iter": 250, "max_points": 20}',
        ]
    )
    assert again.read_text() == out.read_text()  # seeded


def test_test_time_augmentation_averages_the_views_probabilities() -> None:
    from ferflow.inference import predict_probabilities, shifted

    torch.manual_seed(0)
    model = models.build("fernettiny", in_channels=1).eval()
    images = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    ckpt = {"arch_kwargs": {"in_channels": 1}}
    plain = predict_probabilities(model, ckpt, images, 4)
    mirrored = predict_probabilities(model, ckpt, images[:, :, ::-1].copy(), 4)
    flip = predict_probabilities(model, ckpt, images, 4, tta="flip")
    assert np.allclose(flip, (plain + mirrored) / 2, atol=1e-5)
    assert np.allclose(flip.sum(1), 1, atol=1e-5)
    assert predict_probabilities(model, ckpt, images, 4, tta="flip-shift").shape == (5, 7)
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    down = shifted(x, 1, 0)
    assert torch.equal(down[0, 0, 1:], x[0, 0, :-1]) and torch.equal(down[0, 0, 0], x[0, 0, 0])
