"""AffectNet injection: layouts, label policies, odd images, unreadable files, bad class names, real data."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datastage import make_stage
from ferflow import cli
from ferflow.classes import CLASS_NAMES, canonical
from ferflow.errors import FerflowError
from ferflow.fetch import resolve_source
from ferflow.preprocess.affectnet import load_affectnet
from ferflow.storage import load_split, read_json
from ferflow.synthetic import write_affectnet_like

ANGRY, DISGUST, SURPRISE = (CLASS_NAMES.index(c) for c in ("angry", "disgust", "surprise"))


def _face(path: Path, seed: int, size: tuple[int, int] = (64, 64), mode: str = "RGB") -> None:
    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb.convert(mode).save(path)


def _labels_csv(root: Path, rows: list[tuple[str, str]]) -> None:
    with open(root / "labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["", "pth", "label", "relFCs"])
        writer.writerows((i, pth, label, 0.9) for i, (pth, label) in enumerate(rows))


def _inject(tmp_path: Path, source: Path | str, *extra: str, train: dict[int, int] | None = None) -> int:
    make_stage(tmp_path / "raw", train or {label: 5 for label in range(7)})
    return cli.main(
        [
            "affectnet",
            "--in-dir",
            str(tmp_path / "raw"),
            "--out",
            str(tmp_path / "out"),
            "--source",
            str(source),
            "--cache-dir",
            str(tmp_path / "cache"),
            *extra,
        ]
    )


def _quiet(msg: str) -> None:
    pass


def test_injects_into_train_only_with_origin_ids(tmp_path: Path) -> None:
    source = write_affectnet_like(tmp_path / "src", per_class=6, seed=1)
    assert _inject(tmp_path, source, "--workers", "1") == 0
    raw, out = tmp_path / "raw", tmp_path / "out"
    for name in ("val", "test"):
        assert (out / f"{name}.npz").read_bytes() == (raw / f"{name}.npz").read_bytes()
    before, after = load_split(raw / "train.npz"), load_split(out / "train.npz")
    assert np.array_equal(after.images[: len(before)], before.images)
    added = after.subset(np.arange(len(before), len(after)))
    assert all(i.startswith("affectnet:") for i in added.ids)
    assert sorted(i.split(":", 1)[1] for i in added.ids) == sorted(
        p.relative_to(source).as_posix() for p in source.rglob("*.jpg")
    )
    assert added.images.shape[1:] == (48, 48)
    summary = read_json(out / "summary.json")
    assert summary["train"] == after.counts()
    assert summary["train"]["angry"] == 5 + 6 and summary["train"]["fear"] == 5
    assert summary["val"] == read_json(raw / "summary.json")["val"]


def test_synthetic_source_and_max_per_class_is_seeded(tmp_path: Path) -> None:
    args = ["--settings", '{"synthetic_per_class": 10, "max_per_class": 4, "classes": ["angry", "surprise"]}']
    assert _inject(tmp_path / "a", "synthetic", *args) == 0
    assert _inject(tmp_path / "b", "synthetic", *args) == 0
    a, b = (load_split(tmp_path / x / "out" / "train.npz") for x in "ab")
    assert list(a.ids) == list(b.ids) and np.array_equal(a.images, b.images)
    counts = a.counts()
    assert counts["angry"] == 5 + 4 and counts["surprise"] == 5 + 4 and counts["disgust"] == 5


def test_odd_image_modes_and_sizes_are_converted(tmp_path: Path) -> None:
    root = tmp_path / "affectnet"
    cases = {
        "rgba.png": "RGBA",
        "palette.png": "P",
        "cmyk.jpg": "CMYK",
        "gray_alpha.png": "LA",
        "bilevel.png": "1",
        "wide.jpg": "RGB",
    }
    for k, (name, mode) in enumerate(cases.items()):
        _face(root / "anger" / name, k, size=(120, 80) if name == "wide.jpg" else (64, 64), mode=mode)
    deep = (np.random.default_rng(9).integers(0, 65536, (70, 50))).astype(np.uint16)
    Image.fromarray(deep).save(root / "anger" / "deep16.png")
    assert Image.open(root / "anger" / "deep16.png").mode.startswith("I")
    split = load_affectnet(root, ["angry"], "folder", None, 0, 1, _quiet)
    assert len(split) == len(cases) + 1
    assert split.images.shape == (len(cases) + 1, 48, 48) and split.images.dtype == np.uint8
    assert (split.labels == ANGRY).all()
    assert all(img.std() > 0 for img in split.images)  # real content, not blank fills


def test_label_policies_and_files_missing_from_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "affectnet"
    for k, rel in enumerate(["anger/a.jpg", "anger/b.jpg", "anger/c.jpg", "surprise/d.jpg", "contempt/e.jpg"]):
        _face(root / rel, k)
    _labels_csv(
        root,
        [
            ("anger/a.jpg", "anger"),
            ("anger/b.jpg", "surprise"),
            ("surprise/d.jpg", "Surprise"),
            ("contempt/e.jpg", "contempt"),
        ],
    )  # anger/c.jpg missing from the CSV
    by_folder = load_affectnet(root, ["angry", "surprise"], "folder", None, 0, 1, print)
    assert by_folder.counts()["angry"] == 3 and by_folder.counts()["surprise"] == 1
    agree = load_affectnet(root, ["angry", "surprise"], "agree", None, 0, 1, print)
    assert sorted(agree.ids) == ["affectnet:anger/a.jpg", "affectnet:surprise/d.jpg"]
    log = capsys.readouterr().out
    assert "1 disagree, 1 missing from labels.csv (dropped)" in log
    assert "contempt: dropped" in log


def test_agree_needs_labels_csv(tmp_path: Path) -> None:
    _face(tmp_path / "affectnet" / "anger" / "a.jpg", 0)
    with pytest.raises(FerflowError, match="labels.csv"):
        load_affectnet(tmp_path / "affectnet", ["angry"], "agree", None, 0, 1, _quiet)


def _corrupt_folder(root: Path, good: int, bad: int) -> list[Path]:
    for k in range(good):
        _face(root / "disgust" / f"image{k:04d}.jpg", k, size=(16, 16))
    broken = []
    for k in range(bad):
        path = root / "disgust" / f"broken{k}.jpg"
        path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        broken.append(path)
    return broken


def test_unreadable_images_skipped_below_one_percent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "affectnet"
    _corrupt_folder(root, good=100, bad=1)
    split = load_affectnet(root, ["disgust"], "folder", None, 0, 2, print)
    assert len(split) == 100
    log = capsys.readouterr().out
    assert "1 of 101 images unreadable" in log and "broken0.jpg" in log


def test_unreadable_images_above_one_percent_fail_listing_them(tmp_path: Path) -> None:
    root = tmp_path / "affectnet"
    broken = _corrupt_folder(root, good=98, bad=2)
    assert _inject(tmp_path, root, "--settings", '{"classes": ["disgust"]}') == 1
    assert not (tmp_path / "out").exists()
    with pytest.raises(FerflowError, match=r"2 of 100 AffectNet images unreadable \(> 1%\)") as info:
        load_affectnet(root, ["disgust"], "folder", None, 0, 1, _quiet)
    assert all(str(p) in str(info.value) for p in broken)


def test_class_names_that_map_to_nothing_are_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for classes in (["contempt"], ["angry", "joy"], ["angry", "angry"], []):  # the schema's names, each once, ≥ 1
        with pytest.raises(SystemExit) as exit_:
            _inject(tmp_path, "synthetic", "--settings", json.dumps({"classes": classes}))
        assert exit_.value.code == 2
        assert "invalid setting classes" in capsys.readouterr().err
        assert not (tmp_path / "out").exists()
    root = tmp_path / "affectnet"
    _face(root / "anger" / "a.jpg", 0)
    _face(root / "bewildered" / "b.jpg", 1)
    assert _inject(tmp_path, root) == 1
    assert "class folder 'bewildered' maps to no ferflow class" in capsys.readouterr().err
    _labels_csv(root, [("anger/a.jpg", "grumpy")])
    with pytest.raises(FerflowError, match="label 'grumpy' of anger/a.jpg"):
        load_affectnet(root, ["angry"], "folder", None, 0, 1, _quiet)


def test_official_annotation_csv_crops_the_face_box(tmp_path: Path) -> None:
    root = tmp_path / "release"
    images = root / "Manually_Annotated_Images"
    rows = [  # (subDirectory_filePath, box, expression)
        ("1/anger.jpg", (30, 10, 40, 40), 6),
        ("1/disgust.png", (5, 20, 50, 50), 5),
        ("2/contempt.jpg", (0, 0, 40, 40), 7),
        ("2/none.jpg", (0, 0, 40, 40), 8),
        ("2/happy.jpg", (0, 0, 40, 40), 1),
    ]
    for rel, (x, y, w, h), _ in rows:
        canvas = np.zeros((90, 120, 3), np.uint8)
        canvas[y : y + h, x : x + w] = 255  # the face box is white, the rest black
        (images / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(canvas).save(images / rel, quality=100)
    with open(root / "training.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "subDirectory_filePath",
                "face_x",
                "face_y",
                "face_width",
                "face_height",
                "facial_landmarks",
                "expression",
                "valence",
                "arousal",
            ]
        )
        writer.writerows((rel, x, y, w, h, "", code, 0.1, 0.2) for rel, (x, y, w, h), code in rows)
    split = load_affectnet(root, ["angry", "disgust", "surprise"], "folder", None, 0, 1, _quiet)
    assert sorted(split.ids) == ["affectnet:1/anger.jpg", "affectnet:1/disgust.png"]
    assert sorted(split.labels.tolist()) == [ANGRY, DISGUST]
    assert split.images.min() >= 240  # only the white face box remains after the crop


# --------------------------------------------------------------------------------------------- real data
def _expected_from_zip(path: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Per-class counts under each policy, computed from the archive's listing and labels.csv alone."""
    with zipfile.ZipFile(path) as zf:
        files = [n for n in zf.namelist() if n.lower().endswith(".jpg")]
        rows = list(csv.DictReader(io.TextIOWrapper(zf.open("affectnet/labels.csv"), encoding="utf-8")))
    present = {n.split("/", 1)[1] for n in files}  # "<class>/<file>"
    folder = {c: 0 for c in CLASS_NAMES}
    for rel in present:
        folder[canonical(rel.split("/")[0])] += 1
    agree = {c: 0 for c in CLASS_NAMES}
    for row in rows:
        cls = canonical(row["pth"].split("/")[0])
        if row["pth"] in present and canonical(row["label"]) == cls:
            agree[cls] += 1
    return folder, agree


@pytest.mark.realdata
def test_real_affectnet_sample_counts_for_both_policies(tmp_path: Path, affectnet_zip: Path) -> None:
    folder, agree = _expected_from_zip(affectnet_zip)
    # the figures /work/shared/data/README.md documents for this archive
    assert (folder["angry"], folder["disgust"], folder["surprise"]) == (3218, 2430, 3465)
    assert (agree["angry"], agree["disgust"], agree["surprise"]) == (1998, 1742, 2344)

    assert _inject(tmp_path, affectnet_zip, train={label: 3 for label in range(7)}) == 0
    injected = {c: n - 3 for c, n in read_json(tmp_path / "out" / "summary.json")["train"].items()}
    assert injected == folder

    extracted = resolve_source(str(affectnet_zip), None, tmp_path / "cache")  # cached by the run above
    split = load_affectnet(extracted, ["angry", "disgust", "surprise"], "agree", None, 0, 2, _quiet)
    assert split.counts() == agree
    assert all(i.startswith("affectnet:") for i in split.ids)
