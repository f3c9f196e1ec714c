"""ferflow predict: faces found in photos, results per face, bad input, refused checkpoints."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from ferflow.classes import CLASS_NAMES
from ferflow.cli import main
from ferflow.predict.scenes import Box, background, drawn_face, paste
from ferflow.predict.tracking import iou
from ferflow.storage import Split, save_split


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["predict", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Box]]:
    """A folder: scene.jpg with three drawn faces, sub/empty.png without a face, sub/broken.jpg (not an image)."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(3)
    scene = background(rng)
    boxes = paste(scene, [np.repeat(drawn_face(s)[..., None], 3, -1) for s in (110, 150, 190)], rng)
    Image.fromarray(scene).save(root / "scene.jpg", quality=92)
    (root / "sub").mkdir()
    Image.fromarray(background(rng)).save(root / "sub" / "empty.png")
    (root / "sub" / "broken.jpg").write_bytes(b"this is not a JPEG")
    (root / "sub" / "notes.txt").write_text("not an image extension: ignored")
    return root, boxes


def test_folder_json_finds_faces_and_reports_bad_files(photos, ckpt, capsys, tmp_path):
    root, boxes = photos
    code, out, err = run_cli(
        capsys, str(root), "--checkpoint", str(ckpt), "--json", "--annotate", str(tmp_path / "ann")
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["classes"] == list(CLASS_NAMES) and doc["arch"] == "resnet"
    by_name = {Path(r["path"]).name: r for r in doc["images"]}
    assert set(by_name) == {"scene.jpg", "empty.png", "broken.jpg"}  # recursive, by extension

    scene = by_name["scene.jpg"]
    assert (scene["width"], scene["height"], scene["error"]) == (800, 600, None)
    assert len(scene["faces"]) == len(boxes)
    for face in scene["faces"]:
        assert max(iou(tuple(face["box"]), b) for b in boxes) > 0.5
        probs = face["probabilities"]
        assert list(probs) == list(CLASS_NAMES)
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
        assert face["emotion"] == max(probs, key=probs.get) and face["confidence"] == probs[face["emotion"]]

    assert by_name["empty.png"]["faces"] == [] and by_name["empty.png"]["error"] is None
    assert by_name["broken.jpg"]["faces"] == [] and "unreadable" in by_name["broken.jpg"]["error"]
    assert "broken.jpg" in err and "skipped" in err

    # annotated copies keep the folder layout and size; boxes are drawn in green; no copy of the broken file
    written = sorted(p.relative_to(tmp_path / "ann").as_posix() for p in (tmp_path / "ann").rglob("*") if p.is_file())
    assert written == ["scene.jpg", "sub/empty.png"]
    annotated = np.asarray(Image.open(tmp_path / "ann" / "scene.jpg").convert("RGB")).astype(int)
    assert annotated.shape == (600, 800, 3)
    x, y, w, h = scene["faces"][0]["box"]
    edge = annotated[y + h // 2, x]
    assert edge[1] > 200 and edge[0] < 80 and edge[2] < 80
    assert np.array_equal(
        np.asarray(Image.open(tmp_path / "ann" / "sub" / "empty.png")),
        np.asarray(Image.open(root / "sub" / "empty.png")),
    )


def test_table_output_and_strict(photos, ckpt, capsys):
    root, _ = photos
    code, out, _ = run_cli(capsys, str(root / "scene.jpg"), str(root / "sub" / "empty.png"), "--checkpoint", str(ckpt))
    assert code == 0
    assert "scene.jpg: 3 face(s)" in out and "empty.png: no face found" in out
    assert all(c in out for c in CLASS_NAMES)
    code, _, err = run_cli(capsys, str(root / "sub" / "empty.png"), "--checkpoint", str(ckpt), "--strict")
    assert code == 1 and "1 without a face" in err
    code, _, _ = run_cli(capsys, str(root / "scene.jpg"), "--checkpoint", str(ckpt), "--strict")
    assert code == 0


def test_no_detect_treats_image_as_face_crop(ckpt, capsys, tmp_path):
    Image.fromarray(drawn_face(96)[:, 8:88]).save(tmp_path / "crop.png")  # 80 wide, 96 high
    code, out, _ = run_cli(capsys, str(tmp_path / "crop.png"), "--checkpoint", str(ckpt), "--no-detect", "--json")
    assert code == 0
    faces = json.loads(out)["images"][0]["faces"]
    assert len(faces) == 1 and faces[0]["box"] == [0, 8, 80, 80]


def test_missing_input_is_an_error(ckpt, capsys, tmp_path):
    code, _, err = run_cli(capsys, str(tmp_path / "nope.jpg"), "--checkpoint", str(ckpt))
    assert code == 1 and "nope.jpg: no such file or folder" in err


class CreatesMarker:
    """Unpickling this object opens (creates) the marker file: code execution by pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_malicious_checkpoint_is_refused(writer, photos, capsys, tmp_path):
    root, _ = photos
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    payload = {"format": "ferflow-checkpoint", "version": 1, "hook": CreatesMarker(marker)}
    if writer == "pickle":
        evil.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, evil)
    # the payload is live: plain unpickling would run it (checked on a copy aimed at another marker)
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(CreatesMarker(probe))).close()
    assert probe.exists()

    code, out, err = run_cli(capsys, str(root / "scene.jpg"), "--checkpoint", str(evil))
    assert code == 1
    assert "evil.pt" in err and "refused" in err
    assert not marker.exists()
    assert out == ""


def test_foreign_checkpoint_is_refused(photos, capsys, tmp_path):
    root, _ = photos
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    code, _, err = run_cli(capsys, str(root / "scene.jpg"), "--checkpoint", str(foreign))
    assert code == 1 and "not a ferflow checkpoint" in err


@pytest.mark.realdata
def test_finds_real_affectnet_faces_pasted_into_scenes(affectnet_zip, ckpt, capsys, tmp_path):
    """40 real AffectNet faces, 120-190 px, pasted ten to a 800×600 scene: most are found where pasted."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(affectnet_zip) as archive:
        names = sorted(n for n in archive.namelist() if n.lower().endswith(".jpg"))
        chosen = [names[i] for i in rng.choice(len(names), 40, replace=False)]
        faces = [Image.open(io.BytesIO(archive.read(n))).convert("RGB") for n in chosen]
    pasted: dict[str, list[Box]] = {}
    for k in range(4):
        scene = background(rng)
        resized = [
            np.asarray(f.resize((s, s), Image.Resampling.LANCZOS))
            for f, s in zip(faces[k * 10 : k * 10 + 10], rng.integers(120, 191, 10))
        ]
        pasted[f"scene{k}.jpg"] = paste(scene, resized, rng)
        Image.fromarray(scene).save(tmp_path / f"scene{k}.jpg", quality=92)
    code, out, _ = run_cli(capsys, str(tmp_path), "--checkpoint", str(ckpt), "--json")
    assert code == 0
    found = false_positives = 0
    for image in json.loads(out)["images"]:
        detected = [tuple(f["box"]) for f in image["faces"]]
        truth = pasted[Path(image["path"]).name]
        found += sum(any(iou(t, d) > 0.3 for d in detected) for t in truth)
        false_positives += sum(not any(iou(t, d) > 0.3 for t in truth) for d in detected)
    assert found >= 32, f"only {found} of 40 pasted faces found"
    assert false_positives <= 4


def test_large_photo_is_detected_at_reduced_size_and_boxes_mapped_back(photos, ckpt, capsys, tmp_path):
    root, boxes = photos
    big = Image.open(root / "scene.jpg").resize((2000, 1500), Image.Resampling.BILINEAR)  # above the detection limit
    big.save(tmp_path / "big.png")
    code, out, _ = run_cli(capsys, str(tmp_path / "big.png"), "--checkpoint", str(ckpt), "--json")
    assert code == 0
    found = [tuple(f["box"]) for f in json.loads(out)["images"][0]["faces"]]
    scaled = [tuple(round(v * 2.5) for v in b) for b in boxes]
    assert len(found) == len(scaled) and all(max(iou(f, s) for s in scaled) > 0.5 for f in found)


def test_crop_face_widens_box_and_pads_at_the_border():
    from ferflow.detection import crop_face

    gray = np.arange(100 * 120, dtype=np.uint32).reshape(100, 120).astype(np.uint8)
    crop = crop_face(gray, (0, 10, 40, 40), margin=0.25)  # 60-px square centred on (20, 30): 10 px left of the photo
    assert crop.shape == (60, 60)
    assert np.array_equal(crop[:, 10:], gray[0:60, 0:50]) and np.array_equal(crop[:, 0], gray[0:60, 0])


def test_faces_batched_across_photos_match_one_at_a_time(photos, ckpt, capsys, tmp_path):
    """Faces gathered across photos into batches get the same boxes and probabilities as batch size 1."""
    root, _ = photos
    for k, side in enumerate((100, 140)):  # more photos with faces, so that batches span photos
        Image.fromarray(np.repeat(drawn_face(side)[..., None], 3, -1)).save(tmp_path / f"face{k}.png")
    Image.open(root / "scene.jpg").save(tmp_path / "scene.jpg")
    documents = {}
    for batch in ("1", "64"):
        code, out, err = run_cli(capsys, str(tmp_path), "--checkpoint", str(ckpt), "--json", "--batch-size", batch)
        assert code == 0 and "images/s" in err
        documents[batch] = json.loads(out)["images"]
    assert [len(i["faces"]) for i in documents["64"]] == [1, 1, 3]
    for one, many in zip(documents["1"], documents["64"]):
        assert [f["box"] for f in one["faces"]] == [f["box"] for f in many["faces"]]
        for a, b in zip(one["faces"], many["faces"]):
            assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-5)


def test_onnx_export_predicts_like_its_checkpoint(photos, ckpt, capsys, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 48, 48, 3), dtype=np.uint8)
    save_split(tmp_path / "test.npz", Split(images, np.zeros(8), list("abcdefgh")))
    onnx_path = tmp_path / "model.onnx"
    assert (
        main(
            [
                "export-onnx",
                "--checkpoint",
                str(ckpt),
                "--data",
                str(tmp_path / "test.npz"),
                "--out",
                str(onnx_path),
                "--check-out",
                str(tmp_path / "check.json"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    root, _ = photos
    faces = {}
    for model in (ckpt, onnx_path):
        code, out, _ = run_cli(capsys, str(root / "scene.jpg"), "--checkpoint", str(model), "--json")
        assert code == 0
        doc = json.loads(out)
        assert doc["arch"] == "resnet" and doc["classes"] == list(CLASS_NAMES)
        faces[model] = doc["images"][0]["faces"]
    assert len(faces[ckpt]) == 3 and [f["box"] for f in faces[ckpt]] == [f["box"] for f in faces[onnx_path]]
    for a, b in zip(faces[ckpt], faces[onnx_path]):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-4)

    # an ONNX model without ferflow's metadata is refused with its name
    proto = onnx.load(onnx_path)
    del proto.metadata_props[:]
    onnx.save(proto, tmp_path / "bare.onnx")
    code, _, err = run_cli(capsys, str(root / "scene.jpg"), "--checkpoint", str(tmp_path / "bare.onnx"))
    assert code == 1 and "bare.onnx" in err and "metadata missing" in err
