"""The face detectors of ferflow predict: dlib's HOG detector (``--detector dlib``) beside the Haar cascade,
and the one-line error where the ``dlib`` extra is not installed."""

from __future__ import annotations

import io
import json
import sys
import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image

from ferflow import EmotionRecognizer
from ferflow.cli import main
from ferflow.detection import DlibDetector
from ferflow.errors import FerflowError
from ferflow.predict.scenes import Box, background, drawn_face, face_photo, moving_face_clip, paste
from ferflow.predict.tracking import iou

MISSING = "needs dlib, which the 'dlib' extra installs: pip install 'ferflow[dlib]'"


def gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


@pytest.mark.realdata
def test_dlib_finds_real_faces_where_they_were_pasted(affectnet_zip):
    pytest.importorskip("dlib")
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(affectnet_zip) as archive:
        names = sorted(n for n in archive.namelist() if n.lower().endswith(".jpg"))
        faces = [
            np.asarray(Image.open(io.BytesIO(archive.read(names[i]))).convert("RGB").resize((side, side)))
            for i, side in zip(rng.choice(len(names), 3, replace=False), (90, 140, 190))
        ]
    scene = background(rng, 600, 400)
    pasted = paste(scene, faces, rng)
    found = DlibDetector()(gray(scene))
    assert len(found) == 3 and all(iou(t, f) > 0.4 for t, f in zip(pasted, found)), (pasted, found)


def test_dlib_finds_no_face_in_a_face_free_scene():
    pytest.importorskip("dlib")
    assert DlibDetector()(gray(background(np.random.default_rng(1), 600, 400))) == []


def test_dlib_boxes_are_clipped_to_the_image_and_framed_like_the_cascade():
    """A dlib rectangle partly above and left of the image becomes an (x, y, w, h) box inside it, grown by
    DLIB_GROW about its centre raised by DLIB_RAISE of its side."""
    dlib = pytest.importorskip("dlib")
    detector = DlibDetector(min_face=80)  # no resize: scale 1
    detector.hog = lambda image, upsample: [dlib.rectangle(-20, -10, 59, 69)]  # 80 px, centre (20, 30)
    assert detector(np.zeros((100, 100), np.uint8)) == [(0, 0, 66, 70)]  # side 92, centre (20, 23.6)


def test_predict_with_dlib_gives_the_boxes_of_the_api(ckpt, capsys, tmp_path):
    pytest.importorskip("dlib")
    photo = tmp_path / "faces.png"
    drawn = face_photo(photo, sides=(120, 180))
    assert main(["predict", str(photo), "--checkpoint", str(ckpt), "--detector", "dlib", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["detector"] == "dlib.get_frontal_face_detector"
    boxes = [tuple(f["box"]) for f in document["images"][0]["faces"]]
    api = EmotionRecognizer(ckpt, detector="dlib").predict(photo)
    assert boxes == [f.box for f in api]
    assert len(boxes) == 2 and all(iou(b, d) > 0.4 for b, d in zip(boxes, drawn)), (boxes, drawn)


def test_without_dlib_the_dlib_detector_names_its_extra(ckpt, capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # `import dlib` fails as where it is not installed
    photo = tmp_path / "photo.jpg"
    face_photo(photo)
    out = tmp_path / "annotated"
    args = ["predict", str(photo), "--checkpoint", str(ckpt), "--detector", "dlib", "--annotate", str(out)]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"ferflow predict: error: {MISSING}"] and captured.out == ""
    assert not out.exists()
    with pytest.raises(FerflowError, match=r"^needs dlib, which the 'dlib' extra"):
        EmotionRecognizer(ckpt, detector="dlib")


def test_unknown_detector_is_refused(ckpt):
    with pytest.raises(FerflowError, match="detector 'mtcnn' is not one of haar, dlib"):
        EmotionRecognizer(ckpt, detector="mtcnn")


def test_video_with_dlib_tracks_a_drawn_face(ckpt, tmp_path):
    """dlib finds the clips' drawn face; frames at full size (--detect-side 640), as dlib finds faces from
    about 80 px of the detection size; between whole-frame searches, near() finds it again."""
    pytest.importorskip("dlib")
    clip = tmp_path / "clip.mp4"
    truth: list[Box] = moving_face_clip(clip, np.repeat(drawn_face(150)[..., None], 3, -1), frames=12)
    table = EmotionRecognizer(ckpt, detector="dlib").video(clip, detect_side=640)
    assert list(table["frame"]) == list(range(12)) and set(table["face_id"]) == {1}
    for frame, *box in table[["frame", "x", "y", "w", "h"]].itertuples(index=False):
        assert iou(tuple(box), truth[frame]) > 0.4, (frame, box, truth[frame])
