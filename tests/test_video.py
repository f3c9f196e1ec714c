"""ferflow predict on videos: frame sampling, face tracks, the CSV, the plot, the annotated video, bad input."""

from __future__ import annotations

import csv
import importlib.resources
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ferflow.classes import CLASS_NAMES, canonical
from ferflow.cli import main
from ferflow.detection import FaceDetector
from ferflow.predict.classifier import Predictor
from ferflow.predict.scenes import Box, affectnet_faces, drawn_face, moving_face_clip, scene
from ferflow.predict.tracking import IouTracker, iou
from ferflow.predict.video_analysis import Sampler
from test_export import make_checkpoint

FRAMES, FPS = 60, 30.0
HEADER = ["time_s", "frame", "face_id", "x", "y", "w", "h", "emotion", *CLASS_NAMES]


def run_predict(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["predict", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == HEADER
        return list(reader)


def haar_finds(face_rgb: np.ndarray, side: int = 150) -> bool:
    """Whether the cascade finds ``face_rgb`` pasted into the clips' scene (a still, at its first position)."""
    frame = cv2.cvtColor(scene(640, 480), cv2.COLOR_BGR2GRAY)
    frame[165 : 165 + side, 20 : 20 + side] = cv2.cvtColor(cv2.resize(face_rgb, (side, side)), cv2.COLOR_RGB2GRAY)
    return len(FaceDetector(max_side=320)(frame)) == 1


def trained_checkpoint() -> Path | None:
    """$FERFLOW_TEST_CHECKPOINT, else a checkpoint shipped in the package (ferflow/assets/*.pt), else None."""
    if os.environ.get("FERFLOW_TEST_CHECKPOINT"):
        return Path(os.environ["FERFLOW_TEST_CHECKPOINT"])
    try:
        assets = importlib.resources.files("ferflow") / "assets"
        shipped = sorted(str(p) for p in assets.iterdir() if p.name.endswith(".pt"))
    except (FileNotFoundError, NotADirectoryError):
        return None
    return Path(shipped[0]) if shipped else None


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init resnet (3 channels): enough for detection, tracking and the outputs."""
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "best.pt", "resnet", 3)


@pytest.fixture(scope="module")
def drawn_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Box]]:
    path = tmp_path_factory.mktemp("clip") / "drawn.mp4"
    return path, moving_face_clip(path, np.repeat(drawn_face(150)[..., None], 3, -1), FRAMES, fps=FPS)


@pytest.fixture(scope="module")
def affectnet_clip(tmp_path_factory: pytest.TempPathFactory, affectnet_zip: Path) -> tuple[Path, list[Box]]:
    """A real AffectNet face (the first of the sample that the cascade finds in a still) crossing the scene."""
    face = next(f for _, f in affectnet_faces(affectnet_zip) if haar_finds(f))
    path = tmp_path_factory.mktemp("clip") / "affectnet.mp4"
    return path, moving_face_clip(path, face, FRAMES, fps=FPS)


@pytest.mark.parametrize("clip", ["drawn_clip", pytest.param("affectnet_clip", marks=pytest.mark.realdata)])
def test_one_track_through_the_clip_with_csv_plot_and_annotated_video(clip, request, ckpt, capsys, tmp_path):
    video, truth = request.getfixturevalue(clip)
    out = tmp_path / "out"
    out.mkdir()
    csv_path, plot, annotated = out / "faces.csv", out / "faces.png", out / "annotated.mp4"
    code, _, err = run_predict(
        capsys,
        str(video),
        "--checkpoint",
        str(ckpt),
        "--every",
        "2",
        "--csv",
        str(csv_path),
        "--plot",
        str(plot),
        "--annotate",
        str(annotated),
        "--threads",
        "2",
    )
    assert code == 0, err
    assert f"{FRAMES} frames, {FRAMES // 2} analysed, 1 face track(s)" in err and "frames/s end to end" in err
    assert sorted(p.name for p in out.iterdir()) == ["annotated.mp4", "faces.csv", "faces.png"]  # no temporary left

    rows = read_rows(csv_path)
    assert [int(r["frame"]) for r in rows] == list(range(0, FRAMES, 2))  # one row per sampled frame
    assert {r["face_id"] for r in rows} == {"1"}  # one identity throughout
    for r in rows:
        frame = int(r["frame"])
        assert float(r["time_s"]) == pytest.approx(frame / FPS, abs=1e-3)
        box = tuple(int(r[k]) for k in "xywh")
        assert iou(box, truth[frame]) > 0.5, (frame, box, truth[frame])
        probs = np.array([float(r[c]) for c in CLASS_NAMES])
        assert probs.sum() == pytest.approx(1.0, abs=1e-3) and r["emotion"] == CLASS_NAMES[int(probs.argmax())]

    with Image.open(plot) as image:
        assert image.format == "PNG" and image.width >= 400

    capture = cv2.VideoCapture(str(annotated))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES // 2
    ok, first = capture.read()
    capture.release()
    assert ok and first.shape == (480, 640, 3)
    x, y, w, h = (int(rows[0][k]) for k in "xywh")
    b, g, r = first[y + h // 2, x].astype(int)  # on the drawn box's left edge: green
    assert g > 150 and r < 110 and b < 110


def test_fps_sampling_picks_frames_by_video_time(drawn_clip, ckpt, capsys, tmp_path):
    video, _ = drawn_clip
    csv_path = tmp_path / "faces.csv"
    code, _, err = run_predict(
        capsys,
        str(video),
        "--checkpoint",
        str(ckpt),
        "--fps",
        "10",
        "--csv",
        str(csv_path),
        "--plot",
        str(tmp_path / "faces.png"),
    )
    assert code == 0, err
    assert [int(r["frame"]) for r in read_rows(csv_path)] == list(range(0, FRAMES, 3))


def test_sampler():
    every = Sampler(every=4, fps=None)
    assert [i for i in range(12) if every(i, i / 30)] == [0, 4, 8]
    by_time = Sampler(every=None, fps=2)
    assert [i for i in range(31) if by_time(i, i / 10)] == [0, 5, 10, 15, 20, 25, 30]
    uneven = Sampler(every=None, fps=1)  # irregular time stamps (a camera): first frame at or after each second
    assert [t for t in (0.0, 0.4, 0.99, 1.3, 1.6, 2.05, 2.9, 3.0) if uneven(0, t)] == [0.0, 1.3, 2.05, 3.0]


def test_tracker_keeps_identities_while_boxes_overlap():
    tracker = IouTracker(min_iou=0.3, max_missed=2)
    a, b = (0, 0, 100, 100), (300, 0, 100, 100)
    assert tracker.update([a, b]) == [1, 2]
    for step in range(1, 5):  # both move right; listed in the other order
        moved_b, moved_a = (300 + 15 * step, 0, 100, 100), (15 * step, 0, 100, 100)
        assert tracker.update([moved_b, moved_a]) == [2, 1]
    assert tracker.update([]) == [] and tracker.update([(60, 0, 100, 100)]) == [1]  # one missed frame: same id
    assert tracker.update([(600, 300, 80, 80)]) == [3]  # no overlap with anything: a new face
    for _ in range(3):
        tracker.update([])
    assert tracker.update([(60, 0, 100, 100)]) == [4]  # gone for longer than max_missed: a new id


def test_bad_video_input_is_refused_and_writes_nothing(drawn_clip, ckpt, capsys, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    outputs = ["--csv", str(tmp_path / "f.csv"), "--plot", str(tmp_path / "f.png")]
    code, _, err = run_predict(capsys, str(broken), "--checkpoint", str(ckpt), *outputs)
    assert code == 1 and "broken.mp4" in err
    video, _ = drawn_clip
    code, _, err = run_predict(
        capsys, str(video), "--checkpoint", str(ckpt), "--annotate", str(tmp_path / "a.gif"), *outputs
    )
    assert code == 1 and "a.gif" in err
    code, _, err = run_predict(capsys, str(video), "--checkpoint", str(ckpt), "--json", *outputs)
    assert code == 1 and "--json" in err
    code, _, err = run_predict(capsys, str(video), str(video), "--checkpoint", str(ckpt), *outputs)
    assert code == 1 and "one video file" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4"]


@pytest.mark.realdata
def test_trained_checkpoint_reports_the_pasted_faces_class(affectnet_zip, capsys, tmp_path):
    """With a trained model: the first sample face (every 50th, sorted) that the model classifies right as
    a still with probability >= 0.5, and that the cascade finds, keeps that emotion over most frames of its clip."""
    trained = trained_checkpoint()
    if trained is None:
        pytest.skip("no trained checkpoint: set FERFLOW_TEST_CHECKPOINT or ship one in ferflow/assets/")
    predictor = Predictor(trained)
    chosen = None
    for folder, face in affectnet_faces(affectnet_zip)[::50]:
        gray = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
        label = canonical(folder)
        probabilities = predictor.crop_probabilities([gray])[0]
        if probabilities[predictor.classes.index(label)] >= 0.5 and haar_finds(face):
            chosen = (label, face)
            break
    if chosen is None:
        pytest.fail(f"{trained}: classifies none of the sampled AffectNet stills right with probability >= 0.5")
    label, face = chosen
    video = tmp_path / "clip.mp4"
    moving_face_clip(video, face, FRAMES, fps=FPS)
    code, _, err = run_predict(
        capsys,
        str(video),
        "--checkpoint",
        str(trained),
        "--every",
        "2",
        "--csv",
        str(tmp_path / "f.csv"),
        "--plot",
        str(tmp_path / "f.png"),
    )
    assert code == 0, err
    rows = read_rows(tmp_path / "f.csv")
    assert {r["face_id"] for r in rows} == {"1"}
    hits = sum(r["emotion"] == label for r in rows)
    assert hits > len(rows) / 2, f"{label} in {hits} of {len(rows)} frames"
