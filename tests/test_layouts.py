"""Reading labelled faces: class-folder layouts (folder, zip) and the ICML CSV."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferflow.classes import CLASS_NAMES, ICML_CODES
from ferflow.errors import FerflowError
from ferflow.sources import load_labelled
from ferflow.synthetic import generate, write_fer_folders


@pytest.fixture(scope="module")
def fer_splits():
    return generate(70, 14, seed=5)


@pytest.fixture()
def fer_folder(tmp_path: Path, fer_splits) -> Path:
    write_fer_folders(tmp_path / "fer", fer_splits)
    return tmp_path / "fer"


def zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, prefix + f.relative_to(folder).as_posix())
    return archive


def save(path: Path, image: np.ndarray, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, **kwargs)


def face(seed: int = 0, shape: tuple[int, ...] = (48, 48)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def check_same(loaded, original) -> None:
    """Loaded splits hold the written images (ids end with the index written in the file name)."""
    assert loaded.counts() == original.counts()
    index = np.array([int(i.rsplit("_", 1)[1].split(".")[0]) for i in loaded.ids])
    np.testing.assert_array_equal(loaded.images, original.images[index])
    np.testing.assert_array_equal(loaded.labels, original.labels[index])


def test_class_folders_round_trip(fer_folder: Path, fer_splits) -> None:
    data = load_labelled(fer_folder)
    assert set(data) == {"train", "test"}
    for split in ("train", "test"):
        check_same(data[split], fer_splits[split])
    assert data["train"].ids[0].startswith("train/angry/Training_")
    assert list(data["train"].ids) == sorted(data["train"].ids)


def test_zip_with_a_top_folder_reads_like_the_folder(fer_folder: Path, tmp_path: Path, fer_splits) -> None:
    archive = zip_folder(fer_folder, tmp_path / "fer.zip", prefix="fer2013/")
    data = load_labelled(archive)
    for split in ("train", "test"):
        check_same(data[split], fer_splits[split])


def test_flat_class_folders_with_affectnet_names(tmp_path: Path) -> None:
    save(tmp_path / "affectnet" / "anger" / "image1.jpg", face(1, (96, 96, 3)))
    save(tmp_path / "affectnet" / "surprise" / "image2.jpg", face(2, (96, 96, 3)))
    save(tmp_path / "affectnet" / "contempt" / "image3.jpg", face(3, (96, 96, 3)))  # FER+'s eighth class
    (tmp_path / "affectnet" / "labels.csv").write_text(",pth,label,relFCs\n")
    data = load_labelled(tmp_path)
    assert set(data) == {"all"} and data["all"].classes == ("angry", "contempt", "surprise")
    assert data["all"].images.shape == (3, 48, 48)
    assert [data["all"].classes[i] for i in data["all"].labels] == ["angry", "contempt", "surprise"]
    dropped = load_labelled(tmp_path, class_map={"contempt": None})["all"]
    assert list(dropped.ids) == ["anger/image1.jpg", "surprise/image2.jpg"]
    assert dropped.classes == ("angry", "surprise") and list(dropped.labels) == [0, 1]


def test_unknown_class_folder_is_named(tmp_path: Path) -> None:
    save(tmp_path / "train" / "angry" / "a.png", face())
    save(tmp_path / "train" / "joyful" / "b.png", face())
    with pytest.raises(FerflowError, match="joyful"):
        load_labelled(tmp_path)


def test_mixed_layouts_are_refused(tmp_path: Path) -> None:
    save(tmp_path / "train" / "angry" / "a.png", face())
    save(tmp_path / "happy" / "b.png", face())
    with pytest.raises(FerflowError, match="mixes"):
        load_labelled(tmp_path)


def test_test_split_is_told_apart_by_file_name(tmp_path: Path) -> None:
    save(tmp_path / "train" / "sad" / "Training_1.jpg", face(1))
    save(tmp_path / "test" / "sad" / "PublicTest_2.jpg", face(2))
    save(tmp_path / "test" / "sad" / "PrivateTest_3.jpg", face(3))
    save(tmp_path / "test" / "fear" / "PrivateTest_4.jpg", face(4))
    ids = {split: list(load_labelled(tmp_path, split)["test"].ids) for split in ("PublicTest", "PrivateTest", "all")}
    assert ids["PublicTest"] == ["test/sad/PublicTest_2.jpg"]
    assert ids["PrivateTest"] == ["test/fear/PrivateTest_4.jpg", "test/sad/PrivateTest_3.jpg"]
    assert len(ids["all"]) == 3
    with pytest.raises(FerflowError, match="Validation"):
        load_labelled(tmp_path, "Validation")
    assert len(load_labelled(tmp_path, None)["test"]) == 3  # no filter asked: every test image


def test_a_split_filter_that_empties_the_test_images_is_named(tmp_path: Path) -> None:
    save(tmp_path / "train" / "sad" / "Training_1.jpg", face(1))
    save(tmp_path / "test" / "sad" / "PrivateTest_2.jpg", face(2))
    save(tmp_path / "test" / "fear" / "PrivateTest_3.jpg", face(3))
    message = "the split filter 'PublicTest' kept none of the test images \\(dropped: 2 PrivateTest\\)"
    with pytest.raises(FerflowError, match=message):
        load_labelled(tmp_path, "PublicTest")
    flat = tmp_path / "flat"  # top-level class folders are filtered when a split is asked
    save(flat / "sad" / "PrivateTest_4.jpg", face(4))
    save(flat / "fear" / "PublicTest_5.jpg", face(5))
    assert list(load_labelled(flat, "PublicTest")["all"].ids) == ["fear/PublicTest_5.jpg"]
    assert len(load_labelled(flat)["all"]) == 2


def test_hidden_and_non_image_files_are_ignored(tmp_path: Path) -> None:
    save(tmp_path / "train" / "happy" / "a.png", face())
    (tmp_path / "train" / "happy" / "notes.txt").write_text("x")
    (tmp_path / "train" / "happy" / "._a.png").write_bytes(b"resource fork")
    (tmp_path / "__MACOSX" / "train").mkdir(parents=True)
    (tmp_path / "__MACOSX" / "train" / "._x.png").write_bytes(b"junk")
    assert len(load_labelled(tmp_path)["train"]) == 1


def test_strict_refuses_other_sizes_but_plain_reading_converts(tmp_path: Path) -> None:
    save(tmp_path / "train" / "happy" / "big.png", face(1, (64, 64)))
    assert load_labelled(tmp_path)["train"].images.shape == (1, 48, 48)
    with pytest.raises(FerflowError, match=r"big\.png.*64×64"):
        load_labelled(tmp_path, strict=True)


def test_strict_converts_gray_rgb_and_refuses_colour(tmp_path: Path) -> None:
    gray = face(1)
    save(tmp_path / "train" / "happy" / "gray.png", np.stack([gray] * 3, axis=-1))
    loaded = load_labelled(tmp_path, strict=True)["train"]
    np.testing.assert_array_equal(loaded.images[0], gray)
    save(tmp_path / "train" / "happy" / "colour.png", face(2, (48, 48, 3)))
    with pytest.raises(FerflowError, match=r"colour\.png.*colour"):
        load_labelled(tmp_path, strict=True)


def test_unreadable_image_is_named(tmp_path: Path) -> None:
    (tmp_path / "train" / "sad").mkdir(parents=True)
    (tmp_path / "train" / "sad" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(FerflowError, match=r"broken\.jpg"):
        load_labelled(tmp_path)


def write_icml_csv(path: Path, rows: list[tuple[int, str, np.ndarray]], spaced: bool) -> None:
    header = "emotion, Usage, pixels" if spaced else "emotion,pixels,Usage"
    lines = [header]
    for code, usage, pixels in rows:
        text = " ".join(map(str, pixels.ravel()))
        lines.append(f"{code},{usage},{text}" if spaced else f"{code},{text},{usage}")
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("name,spaced", [("fer2013.csv", False), ("icml_face_data.csv", True)])
def test_icml_csv(tmp_path: Path, name: str, spaced: bool) -> None:
    rows = [
        (code, usage, face(10 * code + k))
        for k, usage in enumerate(["Training", "PublicTest", "PrivateTest"])
        for code in ICML_CODES
    ]
    write_icml_csv(tmp_path / name, rows, spaced)
    data = load_labelled(tmp_path / name)  # the CSV itself
    assert len(data["train"]) == 7 and len(data["test"]) == 14
    expected = [CLASS_NAMES.index(ICML_CODES[code]) for code, usage, _ in rows if usage == "Training"]
    assert list(data["train"].labels) == expected  # ICML codes: 4 is sad, 6 is neutral
    np.testing.assert_array_equal(data["train"].images, np.stack([p for _, u, p in rows if u == "Training"]))
    public = load_labelled(tmp_path, "PublicTest")["test"]  # found in the folder
    np.testing.assert_array_equal(public.images, np.stack([p for _, u, p in rows if u == "PublicTest"]))
    np.testing.assert_array_equal(load_labelled(tmp_path, None)["test"].images, public.images)  # the CSV's default
    archive = tmp_path / "csv.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(tmp_path / name, f"data/{name}")
    assert len(load_labelled(archive, "PrivateTest")["test"]) == 7


def test_icml_csv_filter_that_empties_the_test_rows_is_named(tmp_path: Path) -> None:
    path = tmp_path / "fer2013.csv"
    write_icml_csv(path, [(0, "Training", face(1)), (3, "PrivateTest", face(2))], spaced=False)
    with pytest.raises(FerflowError, match="split filter 'PublicTest' kept none of the test rows.*1 PrivateTest"):
        load_labelled(path, None)
    assert len(load_labelled(path, "PrivateTest")["test"]) == 1


def test_icml_csv_bad_row_is_named(tmp_path: Path) -> None:
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels,Usage\n0," + " ".join(["1"] * 2304) + ",Training\n3,1 2 3,Training\n")
    with pytest.raises(FerflowError, match="fer2013.csv: row 2"):
        load_labelled(path)
    path.write_text("emotion,Usage\n0,Training\n")
    with pytest.raises(FerflowError, match="lacks column.*pixels"):
        load_labelled(path)
