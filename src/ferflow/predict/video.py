"""Emotions over a video or a camera: ``ferflow predict clip.mp4`` and ``ferflow predict --camera 0``.

Frames are read with OpenCV (any file it can decode). Every frame is grabbed; a frame is sampled
(decoded into pixels and analysed) every ``--every`` frames, or ``--fps`` times per second of video
time (for a camera, wall-clock time since the start). A sampled frame is converted to grayscale and
faces are found with the photo path's detector (``--detector``): over the whole frame, downscaled to
``--detect-side`` pixels (boxes mapped back), every ``--redetect`` analysed frames and whenever no face is
tracked or a tracked face was missed; in between only around the faces of the previous analysed frame
(:meth:`ferflow.predict.photos.Detector.near`), a fraction of the cost. All faces of the frame are
classified in one batch, and :class:`ferflow.predict.tracking.IouTracker` keeps each face's id while its
boxes overlap from one analysed frame to the next.

Outputs, each written under a temporary name and renamed when complete: the CSV (``--csv``), one row
per face per sampled frame: ``time_s, frame, face_id, x, y, w, h, emotion`` and the probability of each
class; the plot (``--plot``, PNG), one panel per face track (the longest first) with the class
probabilities over time; optionally the annotated video (``--annotate out.mp4`` or ``.avi``) of the
sampled frames with boxes, ids and emotions drawn. A progress bar counts frames and shows frames/s;
the closing line gives frames/s end to end (decode, detection, classification, tracking, annotated video).
Ctrl+C (the way to end a camera run without ``--max-frames``) stops reading and writes what was seen.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from tqdm import tqdm

from ferflow.cli import missing_extra
from ferflow.errors import FerflowError
from ferflow.predict.photos import DETECT_SIDE, DETECTORS, REDETECT, check_options, crop_face, draw_faces, is_video
from ferflow.predict.tracking import BoxT, IouTracker
from ferflow.storage import atomic_path

if TYPE_CHECKING:
    import pandas as pd

    from ferflow.predict.recognizer import EmotionRecognizer

FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}
MAX_PANELS = 6
CAMERA_FPS = 30.0  # assumed when a camera does not report its rate


@dataclass
class FaceRow:
    """One face in one sampled frame."""

    time_s: float
    frame: int
    face_id: int
    box: BoxT
    probabilities: np.ndarray


class Sampler:
    """Decides which frames are analysed: every ``every``-th, or ``fps`` per second of video time."""

    def __init__(self, every: int | None, fps: float | None) -> None:
        self.every, self.fps = every or 1, fps
        self.next_time = 0.0

    def __call__(self, index: int, time_s: float) -> bool:
        if self.fps is None:
            return index % self.every == 0
        if time_s + 1e-9 < self.next_time:
            return False
        while self.next_time <= time_s + 1e-9:
            self.next_time += 1.0 / self.fps
        return True


def open_capture(args: argparse.Namespace) -> tuple[cv2.VideoCapture, str]:
    """The opened capture and its name (``camera<k>`` or the file name)."""
    if args.camera is not None:
        if args.inputs:
            raise FerflowError("--camera takes no input files")
        capture, name = cv2.VideoCapture(args.camera), f"camera{args.camera}"
        if not capture.isOpened():
            raise FerflowError(f"{name}: OpenCV cannot open it")
        return capture, name
    if len(args.inputs) != 1 or not is_video(args.inputs[0]):
        raise FerflowError(
            f"{' '.join(args.inputs)}: give one video file (photos and folders are predicted separately)"
        )
    return open_video(Path(args.inputs[0])), args.inputs[0]


def open_video(path: Path) -> cv2.VideoCapture:
    """The opened capture of a video file; FerflowError when it is missing or OpenCV cannot open it."""
    if not path.is_file():
        raise FerflowError(f"{path}: no such file or folder")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise FerflowError(f"{path}: OpenCV cannot open it")
    return capture


def frames(
    capture: cv2.VideoCapture, camera: bool, sampler: Sampler, max_frames: int | None, progress: tqdm
) -> Iterator[tuple[int, float, np.ndarray]]:
    """``(frame index, time in s, BGR frame)`` of each sampled frame; the others are only grabbed."""
    rate = capture.get(cv2.CAP_PROP_FPS)
    began = time.monotonic()
    index = 0
    while max_frames is None or index < max_frames:
        if not capture.grab():
            return
        if camera:
            time_s = time.monotonic() - began
        else:
            time_s = index / rate if rate > 0 else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
        if sampler(index, time_s):
            ok, frame = capture.retrieve()
            if not ok:
                return
            yield index, time_s, frame
        progress.update()
        index += 1


@contextlib.contextmanager
def video_writer(path: Path | None, fps: float, size: tuple[int, int]) -> Iterator[cv2.VideoWriter | None]:
    """An OpenCV writer whose file appears at ``path`` only when the block completes (None: no video)."""
    if path is None:
        yield None
        return
    fourcc = FOURCC.get(path.suffix.lower())
    if fourcc is None:
        raise FerflowError(f"{path}: annotated video must end in {', '.join(sorted(FOURCC))}")
    with atomic_path(path) as tmp:
        partial = tmp.with_name(tmp.name + path.suffix)  # OpenCV picks the container by the suffix
        writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*fourcc), fps, size)
        try:
            if not writer.isOpened():
                raise FerflowError(f"{path}: OpenCV cannot write this video")
            yield writer
            writer.release()
            os.replace(partial, tmp)
        finally:
            writer.release()
            partial.unlink(missing_ok=True)


@dataclass
class Analysed:
    """One analysed frame: its faces' boxes, track ids and class probabilities ``(faces, classes)``."""

    index: int
    time_s: float
    frame: np.ndarray
    boxes: list[BoxT]
    ids: list[int]
    probabilities: np.ndarray

    def rows(self) -> list[FaceRow]:
        return [FaceRow(self.time_s, self.index, i, b, p) for i, b, p in zip(self.ids, self.boxes, self.probabilities)]

    def labels(self, classes: list[str]) -> list[str]:
        """What the annotated video draws above each face: ``#<id> <emotion> <probability>``."""
        return [f"#{i} {classes[int(p.argmax())]} {p.max():.2f}" for i, p in zip(self.ids, self.probabilities)]


def analysed_frames(
    recognizer: EmotionRecognizer,
    capture: cv2.VideoCapture,
    camera: bool,
    sampler: Sampler,
    detect_side: int,
    redetect: int,
    max_frames: int | None,
    progress: tqdm,
) -> Iterator[Analysed]:
    """Detect, classify and track the faces of every sampled frame (see the module docstring)."""
    detector = DETECTORS[recognizer.detector_kind](min_face=recognizer.min_face, max_side=detect_side)
    tracker = IouTracker()
    for n, (index, time_s, frame) in enumerate(frames(capture, camera, sampler, max_frames, progress)):
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        tracked = tracker.tracks
        if n % redetect == 0 or not tracked or any(t.missed for t in tracked):
            boxes = detector(gray)
        else:
            boxes = detector.near(gray, [t.box for t in tracked])
        probs = recognizer.predictor.crop_probabilities([crop_face(gray, b, recognizer.margin) for b in boxes])
        yield Analysed(index, time_s, frame, boxes, tracker.update(boxes), probs)


def face_rows(
    recognizer: EmotionRecognizer,
    path: Path,
    fps: float | None = None,
    every: int | None = None,
    max_frames: int | None = None,
    detect_side: int = DETECT_SIDE,
    redetect: int = REDETECT,
    progress: bool = False,
) -> list[FaceRow]:
    """The face rows of a whole video file (:meth:`ferflow.EmotionRecognizer.video`)."""
    check_options(fps, every=every, max_frames=max_frames, detect_side=detect_side, redetect=redetect)
    capture = open_video(path)
    try:
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        with tqdm(total=total, desc=path.name, unit="frame", file=sys.stderr, disable=not progress) as bar:
            analysed = analysed_frames(
                recognizer, capture, False, Sampler(every, fps), detect_side, redetect, max_frames, bar
            )
            return [row for a in analysed for row in a.rows()]
    finally:
        capture.release()


def face_table(rows: list[FaceRow], classes: list[str]) -> pd.DataFrame:
    """The face rows as a table: ``time_s, frame, face_id, x, y, w, h, emotion`` and each class's probability."""
    import pandas as pd

    columns = ["time_s", "frame", "face_id", "x", "y", "w", "h"]
    frame = pd.DataFrame([(r.time_s, r.frame, r.face_id, *r.box) for r in rows], columns=columns)
    probabilities = np.stack([r.probabilities for r in rows]) if rows else np.zeros((0, len(classes)), np.float32)
    frame["emotion"] = [classes[k] for k in probabilities.argmax(axis=1)]
    for k, name in enumerate(classes):
        frame[name] = probabilities[:, k]
    return frame


def write_csv(path: Path, rows: list[FaceRow], classes: list[str]) -> None:
    table = face_table(rows, classes).round({"time_s": 3, **dict.fromkeys(classes, 5)})
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def plot_tracks(path: Path, rows: list[FaceRow], classes: list[str], source: str) -> None:
    """One panel per face track (the ``MAX_PANELS`` longest), each class's probability over time."""
    from ferflow.plotting import class_color, plt, save_figure

    by_id: dict[int, list[FaceRow]] = {}
    for row in rows:
        by_id.setdefault(row.face_id, []).append(row)
    tracks = sorted(by_id.items(), key=lambda item: (-len(item[1]), item[0]))[:MAX_PANELS]
    panels = max(1, len(tracks))  # constrained layout: the title clear of the panels' titles, the legend below
    size = (8, 2.2 * panels + 0.6)
    fig, axes = plt.subplots(panels, 1, figsize=size, squeeze=False, sharex=True, layout="constrained")
    for ax, (face_id, track) in zip(axes[:, 0], tracks):
        times = [r.time_s for r in track]
        probs = np.stack([r.probabilities for r in track])
        for k, name in enumerate(classes):
            ax.plot(
                times, probs[:, k], color=class_color(name), label=name, lw=1.4, marker="." if len(track) < 30 else None
            )
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.set_title(f"face {face_id} ({len(track)} frames)", fontsize=10)
    if tracks:
        fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=len(classes), fontsize=8)
    else:
        axes[0, 0].text(0.5, 0.5, "no face found", ha="center", va="center", transform=axes[0, 0].transAxes)
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(f"Emotions over time: {Path(source).name}", fontsize=11)
    save_figure(fig, path, dpi=100)


def run_video(args: argparse.Namespace, recognizer: EmotionRecognizer) -> int:
    """Analyse one video file or camera (see the module docstring); 0 when done."""
    if args.json or args.no_detect:
        raise FerflowError("--json and --no-detect apply to photos, not to videos")
    capture, name = open_capture(args)
    stem = Path(name).stem
    csv_path = Path(args.csv or f"{stem}.emotions.csv")
    plot_path: Path | None = Path(args.plot or f"{stem}.emotions.png")
    if plot_path.suffix.lower() != ".png":
        raise FerflowError(f"{plot_path}: the plot is written as PNG (use a .png name)")
    if importlib.util.find_spec("matplotlib") is None:
        if args.plot:
            raise FerflowError(f"--plot {missing_extra('matplotlib')}")
        print(f"ferflow predict: no plot written: it {missing_extra('matplotlib')}", file=sys.stderr)
        plot_path = None
    classes = recognizer.classes
    sampler = Sampler(args.every, args.fps)
    camera = args.camera is not None
    source_fps = capture.get(cv2.CAP_PROP_FPS) or CAMERA_FPS
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    total = None if camera else int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    if total is not None and args.max_frames is not None:
        total = min(total, args.max_frames)
    rows: list[FaceRow] = []
    n_sampled = n_frames = 0
    began = time.perf_counter()
    annotated = Path(args.annotate) if args.annotate else None
    try:
        with (
            video_writer(annotated, args.fps or source_fps / sampler.every, size) as writer,
            tqdm(total=total, desc=Path(name).name, unit="frame", file=sys.stderr) as progress,
        ):
            try:
                for a in analysed_frames(
                    recognizer, capture, camera, sampler, args.detect_side, args.redetect, args.max_frames, progress
                ):
                    rows += a.rows()
                    n_sampled += 1
                    if writer is not None:
                        draw_faces(a.frame, a.boxes, a.labels(classes))
                        writer.write(a.frame)
            except KeyboardInterrupt:
                print(f"ferflow predict: {name}: interrupted; writing what was seen", file=sys.stderr)
            n_frames = progress.n
            if n_frames == 0:
                raise FerflowError(f"{name}: no frame could be read")
    finally:
        capture.release()
    seconds = time.perf_counter() - began
    write_csv(csv_path, rows, classes)
    if plot_path is not None:
        plot_tracks(plot_path, rows, classes, name)
    n_tracks = len({r.face_id for r in rows})
    print(
        f"ferflow predict: {name}: {n_frames} frames, {n_sampled} analysed, {n_tracks} face track(s), "
        f"{len(rows)} face rows in {seconds:.2f} s: {n_frames / seconds:.1f} frames/s end to end "
        f"({n_sampled / seconds:.1f} analysed frames/s); wrote "
        + ", ".join(str(p) for p in (csv_path, plot_path, annotated) if p is not None),
        file=sys.stderr,
    )
    return 0
