"""The video command of ``ferflow predict``: emotions over a video file or a camera (``ferflow predict clip.mp4``,
``ferflow predict --camera 0``), on the Python API (:meth:`ferflow.predict.recognizer.EmotionRecognizer.track`).

Frames are read with OpenCV (any file it can decode), sampled by ``--every`` or ``--fps``, and their faces detected,
classified and tracked as :mod:`ferflow.predict.video_analysis` describes, with the photo path's detector
(``--detector``), ``--detect-side`` and ``--redetect``. ``--tta auto`` takes, for a video, the fewest test-time
views the checkpoint's card measures within 0.5 points of the best (the shipped model: flip, not its ten crops);
the run says which, and what each view set costs.

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
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ferflow.cli import missing_extra
from ferflow.errors import FerflowError
from ferflow.faces import VIDEO_SUFFIXES
from ferflow.inference import TTA_VIEWS, view_count
from ferflow.predict.classifier import Predictor
from ferflow.predict.drawing import draw_faces
from ferflow.predict.recognizer import EmotionRecognizer
from ferflow.predict.video_analysis import FaceRow, Sampler, face_table, open_video, sampled_frames
from ferflow.storage import atomic_path, check_outputs

FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}
MAX_PANELS = 6
CAMERA_FPS = 30.0  # assumed when a camera does not report its rate


def is_video(path: str) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def open_capture(args: argparse.Namespace) -> tuple[cv2.VideoCapture, str]:
    """The opened capture and its name (``camera<k>`` or the file name)."""
    if args.camera is not None:
        if args.inputs:
            raise FerflowError("--camera takes no input files")
        if args.camera < 0:  # OpenCV's "any camera", which crashes (segfault) where there is none
            raise FerflowError(f"--camera must be a camera index >= 0, got {args.camera}")
        capture, name = cv2.VideoCapture(args.camera), f"camera{args.camera}"
        if not capture.isOpened():
            raise FerflowError(f"{name}: OpenCV cannot open it")
        return capture, name
    if len(args.inputs) != 1 or not is_video(args.inputs[0]):
        raise FerflowError(
            f"{' '.join(args.inputs)}: give one video file (photos and folders are predicted separately)"
        )
    return open_video(Path(args.inputs[0])), args.inputs[0]


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


def tta_line(predictor: Predictor) -> str:
    """Which test-time views a video uses, and what each view set the checkpoint's card measured costs."""
    measured = predictor.fields.get("tta_accuracy") or {}
    costs = ", ".join(f"{t} {view_count(t)} view(s), {a:.2f} %" for t, a in measured.items() if t in TTA_VIEWS)
    return f"video test-time views: {predictor.video_tta}" + (f" (card's accuracy: {costs})" if costs else "")


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
    annotated = Path(args.annotate) if args.annotate else None
    check_outputs([csv_path, plot_path, annotated], args.inputs)
    print(f"ferflow predict: {tta_line(recognizer.predictor)}", file=sys.stderr)
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
    try:
        with (
            video_writer(annotated, args.fps or source_fps / sampler.every, size) as writer,
            tqdm(total=total, desc=Path(name).name, unit="frame", file=sys.stderr) as progress,
        ):
            try:
                sampled = sampled_frames(capture, camera, sampler, args.max_frames, progress)
                for a in recognizer.track(sampled, args.detect_side, args.redetect):
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
    with atomic_path(csv_path) as tmp:  # the CSV appears only once its plot is written: both or neither
        write_csv(tmp, rows, classes)
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
