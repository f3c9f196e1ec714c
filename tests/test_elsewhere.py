"""Faces from elsewhere: FER+ votes and label modes, classes that come from the data, scores on the classes a
model and a dataset share, `evaluate --detect` / `--ids`, the cross-dataset stage of the DAG and its report."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import copy_workflow, snakemake
from ferflow import checkpoint, cli, ferplus, models
from ferflow.classes import CLASS_NAMES, FERPLUS_CLASSES, FERPLUS_VOTES
from ferflow.errors import FerflowError
from ferflow.metrics import compute_metrics
from ferflow.predict.scenes import face_photo
from ferflow.sources import load_labelled
from ferflow.storage import Split, load_split, save_split
from ferflow.train.engine import DeviceData, EpochBatches, epoch_generator
from ferflow.train.settings import resolve_settings
from test_evaluate import LEVELS, BrightnessNet

VOTES = {  # a vote row (Microsoft's column order) → (majority class or None, crossentropy distribution or None)
    "clear": ([8, 0, 1, 1, 0, 0, 0, 0, 0, 0], "neutral", {"neutral": 1.0}),
    "split": ([4, 0, 0, 1, 3, 2, 0, 0, 0, 0], None, {"neutral": 4 / 7, "angry": 3 / 7}),
    "happy": ([0, 6, 0, 0, 0, 0, 0, 2, 2, 0], "happy", {"happy": 6 / 8, "contempt": 2 / 8}),
    "contempt": ([1, 0, 0, 0, 0, 0, 0, 7, 2, 0], "contempt", {"contempt": 7 / 9, "unknown": 2 / 9}),
    "notface": ([0, 0, 0, 0, 0, 0, 0, 0, 2, 8], None, None),
}


def test_label_modes_follow_the_paper() -> None:
    counts = np.array([v[0] for v in VOTES.values()])
    majority = ferplus.process_votes(counts, "majority")
    soft = ferplus.process_votes(counts, "crossentropy")
    emotions = FERPLUS_VOTES[: ferplus.EMOTIONS]
    for i, (name, (_, top, distribution)) in enumerate(VOTES.items()):
        if top is None:
            assert np.isnan(majority[i]).all(), name
        else:
            assert majority[i, emotions.index(top)] == 1.0, name
        if distribution is None or "unknown" in distribution:
            # the unknown vote ties into the kept entries after an emotion: it is dropped and the rest renormalised
            expected = {k: v for k, v in (distribution or {}).items() if k != "unknown"}
        else:
            expected = distribution
        if not expected:
            assert np.isnan(soft[i]).all(), name
            continue
        total = sum(expected.values())
        for emotion, share in expected.items():
            assert soft[i, emotions.index(emotion)] == pytest.approx(share / total), (name, emotion)


def test_label_faces_maps_to_canonical_classes_and_counts_what_it_leaves_out() -> None:
    counts = np.array([v[0] for v in VOTES.values()])
    kept = ferplus.label_faces(counts, "majority", None, "votes")
    assert kept.classes == FERPLUS_CLASSES
    assert [kept.classes[label] for label in kept.labels] == ["neutral", "happy", "contempt"]
    assert (kept.unknown, kept.not_face) == (1, 1) and kept.soft is None
    seven = ferplus.label_faces(counts, "crossentropy", {"contempt": None}, "votes")
    assert seven.classes == CLASS_NAMES and seven.soft is not None
    assert np.allclose(seven.soft.sum(1), 1) and not seven.sample
    happy = seven.soft[[seven.classes[label] == "happy" for label in seven.labels]]
    assert happy.max() == pytest.approx(1.0)  # contempt's two votes no longer count


def ferplus_folder(root: Path, folder: str, rows: dict[str, list[int]], extra_image: bool = False) -> None:
    """FER+'s generated layout: ``<folder>/fer<n>.png`` faces and a label.csv without header."""
    (root / folder).mkdir(parents=True)
    lines = []
    for i, (name, votes) in enumerate(rows.items()):
        Image.fromarray(np.full((48, 48), 10 * i, np.uint8)).save(root / folder / f"{name}.png")
        lines.append(f'{name}.png,"(0, 0, 48, 48)",' + ",".join(map(str, votes)))
    if extra_image:
        Image.fromarray(np.zeros((48, 48), np.uint8)).save(root / folder / "stray.png")
    (root / folder / "label.csv").write_text("\n".join(lines) + "\n")


def test_ferplus_layout_folders_and_a_zip_of_the_test_folder_only(tmp_path: Path) -> None:
    rows = {f"fer{i:07d}": v[0] for i, v in enumerate(VOTES.values())}
    ferplus_folder(tmp_path / "fp", "FER2013Train", rows)
    ferplus_folder(tmp_path / "fp", "FER2013Valid", rows)
    splits = load_labelled(tmp_path / "fp", label_mode="probability")
    assert set(splits) == {"train", "test"} and splits["train"].classes == FERPLUS_CLASSES
    assert splits["train"].soft is not None and splits["train"].sample_soft  # probability: drawn each epoch
    assert len(splits["train"]) == 4 and len(splits["test"]) == 3  # test: majority labels, unknown left out
    assert splits["test"].soft is None and splits["test"].ids[0] == "FER2013Valid/fer0000000.png"
    ferplus_folder(tmp_path / "only", "FER2013Test", rows)
    archive = tmp_path / "test.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((tmp_path / "only").rglob("*")):
            zf.write(path, path.relative_to(tmp_path / "only").as_posix())
    assert set(load_labelled(archive, "PrivateTest")) == {"test"}
    with pytest.raises(FerflowError, match="kept none"):
        load_labelled(archive, "PublicTest")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing image", "the image of row 2, fer0000001.png, is missing"),
        ("image without a row", "stray.png: image without a row"),
        ("negative vote", "row 1 has votes"),
        ("fractional vote", "row 1 has votes"),
    ],
)
def test_ferplus_bad_input_is_one_line(tmp_path: Path, case: str, message: str) -> None:
    rows = {"fer0000000": [8, 0, 1, 1, 0, 0, 0, 0, 0, 0], "fer0000001": [0, 9, 1, 0, 0, 0, 0, 0, 0, 0]}
    ferplus_folder(tmp_path, "FER2013Valid", rows, extra_image=case == "image without a row")
    label = tmp_path / "FER2013Valid" / "label.csv"
    if case == "missing image":
        (tmp_path / "FER2013Valid" / "fer0000001.png").unlink()
    elif case == "negative vote":
        label.write_text(label.read_text().replace(",8,", ",-8,", 1))
    elif case == "fractional vote":
        label.write_text(label.read_text().replace(",8,", ",7.5,", 1))
    with pytest.raises(FerflowError, match=message) as error:
        load_labelled(tmp_path)
    assert "\n" not in str(error.value)


def test_icml_csv_with_ferplus_votes(tmp_path: Path) -> None:
    pixels = " ".join(["128"] * 48 * 48)
    usages = ["Training", "Training", "PublicTest", "PrivateTest"]
    (tmp_path / "fer2013.csv").write_text(
        "emotion,pixels,Usage\n" + "".join(f"{i % 7},{pixels},{u}\n" for i, u in enumerate(usages))
    )
    votes = [VOTES["clear"][0], VOTES["happy"][0], VOTES["contempt"][0], VOTES["happy"][0]]
    header = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
    (tmp_path / "fer2013new.csv").write_text(
        header + "".join(f"{u},fer{i:07d}.png,{','.join(map(str, v))}\n" for i, (u, v) in enumerate(zip(usages, votes)))
    )
    splits = load_labelled(tmp_path / "fer2013.csv", "PublicTest")
    assert [splits["train"].classes[label] for label in splits["train"].labels] == ["neutral", "happy"]
    assert [splits["test"].classes[label] for label in splits["test"].labels] == ["contempt"]


def test_class_folders_give_their_own_classes_and_a_map_renames_or_drops() -> None:
    names = {"anger/image1.jpg": 0, "happiness/image2.jpg": 0, "contempt/image3.jpg": 0}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in names:
            image = io.BytesIO()
            Image.new("RGB", (96, 96), (90, 90, 90)).save(image, "PNG")
            zf.writestr(name, image.getvalue())
    path = Path(__file__).parent / ".elsewhere-classes.zip"
    try:
        path.write_bytes(buffer.getvalue())
        assert load_labelled(path)["all"].classes == ("angry", "contempt", "happy")
        assert load_labelled(path, class_map={"contempt": None})["all"].classes == ("angry", "happy")
        with pytest.raises(FerflowError, match="unknown class folder 'happiness'"):
            load_labelled(path, class_map={"happiness": "joy"})
    finally:
        path.unlink()


def test_metrics_score_the_shared_classes_only() -> None:
    model = CLASS_NAMES
    data = ("angry", "contempt", "surprise")
    truth = np.array([0, 0, 1, 2, 2, 2])  # angry ×2, contempt (unknown to the model), surprise ×3
    pred = np.array([0, 3, 0, 6, 6, 2])  # angry, happy | angry | surprise, surprise, fear
    metrics = compute_metrics(truth, pred, model, data)
    assert metrics["scored_classes"] == ["angry", "surprise"] and metrics["n_unscored"] == 1
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["per_class"]["angry"]["recall"] == pytest.approx(0.5)
    assert metrics["per_class"]["surprise"]["recall"] == pytest.approx(2 / 3)
    f1 = {"angry": 2 * 1 * 0.5 / 1.5, "surprise": 2 * 1 * (2 / 3) / (5 / 3)}
    assert metrics["macro_f1"] == pytest.approx(np.mean(list(f1.values())))
    assert np.array(metrics["confusion"]).shape == (2, 7)
    with pytest.raises(FerflowError, match="share none"):
        from ferflow.classes import shared_classes

        shared_classes(model, ("contempt",), "x")


@pytest.fixture
def toy_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(models._REGISTRY, "brightness", models.Entry("test_evaluate:BrightnessNet"))
    path = tmp_path / "toy.pt"
    checkpoint.save(path, checkpoint.make(BrightnessNet(), "brightness", {"in_channels": 1, "num_classes": 7}))
    return path


def affectnet_like(root: Path, faces: dict[str, list[int]]) -> Path:
    """Class folders named as AffectNet names them, ``image<id>.png`` faces of each class's gray level."""
    for folder, ids in faces.items():
        (root / folder).mkdir(parents=True)
        level = int(LEVELS[CLASS_NAMES.index({"anger": "angry"}.get(folder, folder))])
        for i in ids:
            Image.new("L", (48, 48), level).save(root / folder / f"image{i:07d}.png")
    return root


def test_evaluate_on_three_classes_by_id_half(
    tmp_path: Path, toy_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = affectnet_like(tmp_path / "aff", {"anger": [1, 2, 3, 4], "surprise": [5, 6, 7, 8]})
    for half, n in (("even", 4), ("odd", 4), ("all", 8)):
        out = tmp_path / f"{half}.json"
        code = cli.main(["evaluate", "--checkpoint", str(toy_checkpoint), "--data", str(data), "--ids", half])
        code |= cli.main(
            ["evaluate", "--checkpoint", str(toy_checkpoint), "--data", str(data), "--ids", half, "--out", str(out)]
        )
        assert code == 0
        metrics = json.loads(out.read_text())
        assert metrics["n_images"] == n and metrics["scored_classes"] == ["angry", "surprise"]
        assert metrics["accuracy"] == 1.0 and metrics["data_classes"] == ["angry", "surprise"]
    assert "on the classes shared with the data: angry, surprise" in capsys.readouterr().out
    code = cli.main(
        [
            "evaluate",
            "--checkpoint",
            str(toy_checkpoint),
            "--data",
            str(data),
            "--classes",
            '{"anger": "contempt", "surprise": "contempt"}',
        ]
    )
    assert code != 0 and "share none with the model's" in capsys.readouterr().err


def test_evaluate_detect_crops_faces_as_predict_does(
    tmp_path: Path, ckpt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A face found in a photo is scored; a blank image has no face and counts as wrong."""
    root = tmp_path / "photos"
    for folder in ("happy", "sad"):
        (root / folder).mkdir(parents=True)
    face_photo(root / "happy" / "image0000002.png", (150,))
    Image.new("L", (320, 240), 128).save(root / "sad" / "image0000004.png")
    out = tmp_path / "detect.json"
    code = cli.main(["evaluate", "--checkpoint", str(ckpt), "--data", str(root), "--detect", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads(out.read_text())
    assert metrics["detect"] and metrics["no_face"] == 1 and metrics["n_images"] == 2
    assert metrics["per_class"]["sad"]["recall"] == 0.0  # no face: wrong whatever the model says
    assert "no face found in 1 of 2 images" in capsys.readouterr().out


def test_soft_targets_train_through_the_epoch_batches(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    soft = rng.dirichlet(np.ones(8), size=40).astype(np.float32)
    soft[:, 1] = 0  # no contempt anywhere: a drawn label is never contempt
    soft /= soft.sum(1, keepdims=True)
    images = rng.integers(0, 255, (40, 48, 48), dtype=np.uint8)
    split = Split(images, soft.argmax(1), np.array([f"f{i}" for i in range(40)]), FERPLUS_CLASSES, soft)
    save_split(tmp_path / "train.npz", split)
    loaded = load_split(tmp_path / "train.npz")
    assert loaded.classes == FERPLUS_CLASSES and np.allclose(loaded.soft, soft)
    settings = resolve_settings({"batch_size": 8, "augmentation": {"horizontal_flip": False, "rotation": 0}})
    settings["augmentation"].update(shear=0, translate=0)
    data = DeviceData.of(loaded, torch.device("cpu"), 1)
    _, targets, y, _ = next(iter(EpochBatches(data, settings, epoch_generator(1, 1), False)))
    assert targets.shape == (8, 8) and not torch.equal(targets, torch.nn.functional.one_hot(y, 8).float())
    drawn = DeviceData.of(Split(images, soft.argmax(1), split.ids, FERPLUS_CLASSES, soft, True), torch.device("cpu"), 1)
    batches = list(EpochBatches(drawn, settings, epoch_generator(1, 1), False))
    labels = torch.cat([t.argmax(1) for _, t, _, _ in batches])
    assert all(bool(((t == 0) | (t == 1)).all()) for _, t, _, _ in batches)  # one-hot rows
    assert not (labels == 1).any()


def test_an_eight_class_run_predicts_eight_classes(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    for name, n in (("train", 64), ("val", 16)):
        labels = np.arange(n) % 8
        save_split(
            tmp_path / "data" / f"{name}.npz",
            Split(
                rng.integers(0, 255, (n, 48, 48), dtype=np.uint8),
                labels,
                np.array([str(i) for i in range(n)]),
                FERPLUS_CLASSES,
            ),
        )
    settings = json.dumps({"epochs": 1, "batch_size": 16, "amp": False})
    code = cli.main(
        ["train", "--model", "fernetfasttiny", "--experiment", "e", "--data-dir", str(tmp_path / "data"),
         "--out", str(tmp_path / "run"), "--settings", settings, "--seed", "1", "--threads", "1"]
    )  # fmt: skip
    assert code == 0
    model, ckpt = checkpoint.load_model(tmp_path / "run" / "best.pt")
    assert ckpt["classes"] == list(FERPLUS_CLASSES)
    assert model(torch.zeros(2, 1, 48, 48)).shape == (2, 8)
    header = (tmp_path / "run" / "history.csv").read_text().splitlines()[0]
    assert "val_f1_contempt" in header


def test_the_dag_scores_each_final_on_each_dataset_and_reports_it(tmp_path: Path) -> None:
    """A dry run plans one evaluate_elsewhere job per final and dataset, and the tables and report take them."""
    workdir = copy_workflow(tmp_path / "wf")
    overlay = workdir / "elsewhere.yaml"
    overlay.write_text(
        "evaluation:\n  datasets:\n"
        "    a: {source: faces_a.zip}\n"
        "    b: {source: faces_b, detect: true, ids: odd, classes: {anger: angry}}\n"
    )
    plan = snakemake(workdir, "-n", "-p", "--configfile", "workflow/presets/tiny.yaml", str(overlay))
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", plan.stdout, flags=re.MULTILINE))
    assert int(counts["deploy_seed"]) >= 1
    assert int(counts["evaluate_elsewhere"]) == 2 * int(counts["deploy_seed"])
    assert "--detect" in plan.stdout and "--ids odd" in plan.stdout and "--crossdata" in plan.stdout
    assert '{"anger": "angry"}' in plan.stdout


def test_photometric_looks_are_drawn_up_front_and_applied_per_image() -> None:
    from ferflow.train.photometric import apply_photometric, draw_photometric

    looks = {"gamma": 0.5, "contrast": 0.4, "blur": 1.0, "noise": 0.0}
    assert draw_photometric(4, None, torch.Generator()) is None
    first = draw_photometric(6, looks, torch.Generator().manual_seed(3))
    again = draw_photometric(6, looks, torch.Generator().manual_seed(3))
    assert first is not None and again is not None and torch.equal(first.gamma, again.gamma)
    flat = torch.full((6, 1, 16, 16), 0.0)  # mid-gray: contrast and blur keep it, gamma moves it
    out = apply_photometric(flat, first)
    expected = 2 * 0.5**first.gamma - 1
    assert torch.allclose(out[:, 0, 8, 8], expected, atol=1e-5)
    noisy = apply_photometric(flat, draw_photometric(6, {**looks, "noise": 0.2}, torch.Generator().manual_seed(3)))
    assert noisy.std() > 0.01 and noisy.min() >= -1 and noisy.max() <= 1
