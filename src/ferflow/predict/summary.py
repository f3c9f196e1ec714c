"""``ferflow summarize-videos``: one row per face track of many videos' CSVs (``ferflow predict <video> --csv``).

Each track (a video's ``face_id``) gets its time span, its number of analysed frames, its mean class
probabilities, the share of its frames in each emotion (frames are sampled evenly in time, so this is the
share of time) and its dominant emotion, the one with the largest share. ``smoothing`` (rule
``summarize_videos``: config ``videos``) first smooths each track over time: ``ema`` averages the
probabilities exponentially (``ema_alpha``: the weight of the newest frame), and the emotion of a frame is the
largest smoothed probability; ``mode`` takes the most frequent emotion in a centred window of ``mode_window``
frames (ties: the first class in class order); ``none`` keeps each frame's own emotion.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from ferflow.config import add_settings_argument
from ferflow.errors import FerflowError
from ferflow.storage import atomic_path, check_outputs, check_readable

VIDEO_COLUMNS = ["time_s", "frame", "face_id", "x", "y", "w", "h", "emotion"]
"""The columns of a video CSV before the class probabilities (``ferflow.predict.video_analysis.face_table``)."""


def read_video_csv(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """A video CSV and its class names; a one-line error naming the file when it is not one."""
    check_readable(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)  # numbers checked below, quoted as written
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise FerflowError(f"{path}: unreadable video CSV ({' '.join(str(exc).split())})") from None
    if list(table.columns[: len(VIDEO_COLUMNS)]) != VIDEO_COLUMNS or len(table.columns) == len(VIDEO_COLUMNS):
        raise FerflowError(f"{path}: not a CSV of ferflow predict (expected columns {', '.join(VIDEO_COLUMNS)}, ...)")
    classes = list(table.columns[len(VIDEO_COLUMNS) :])
    checks = {"time_s": (np.inf, False), "face_id": (np.inf, True), **dict.fromkeys(classes, (1.0, False))}
    for column, (high, whole) in checks.items():
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~(np.isfinite(values) & (values >= 0) & (values <= high)) | (whole & (values != np.round(values)))
        if bad.any():
            row = int(np.argmax(bad))
            expected = f"a {'whole ' if whole else ''}number from 0{f' to {high:g}' if high < np.inf else ''}"
            raise FerflowError(f"{path}: {column} {table[column].iloc[row]!r} on row {row + 2}, expected {expected}")
        table[column] = values.astype(np.int64) if whole else values
    return table, classes


def smoothed_labels(probabilities: np.ndarray, smoothing: str, ema_alpha: float, mode_window: int) -> np.ndarray:
    """The class index of each frame of one track (``probabilities``: its rows in time order) after ``smoothing``."""
    if smoothing == "ema":
        smooth = probabilities.copy()
        for t in range(1, len(smooth)):
            smooth[t] = ema_alpha * probabilities[t] + (1 - ema_alpha) * smooth[t - 1]
        return smooth.argmax(axis=1)
    labels = probabilities.argmax(axis=1)
    if smoothing == "mode":
        half, k = mode_window // 2, probabilities.shape[1]
        windows = [labels[max(0, t - half) : t - half + mode_window] for t in range(len(labels))]
        return np.array([np.bincount(w, minlength=k).argmax() for w in windows])
    return labels


def track_summary(video: str, table: pd.DataFrame, classes: list[str], settings: dict[str, object]) -> pd.DataFrame:
    """One row per face track of one video's table."""
    rows = []
    for face_id, track in table.sort_values(["face_id", "time_s"]).groupby("face_id", sort=True):
        probabilities = track[classes].to_numpy(dtype=np.float64)
        labels = smoothed_labels(
            probabilities, str(settings["smoothing"]), float(settings["ema_alpha"]), int(settings["mode_window"])
        )
        share = np.bincount(labels, minlength=len(classes)) / len(labels)
        rows.append(
            {
                "video": video,
                "face_id": int(face_id),
                "start_s": float(track["time_s"].min()),
                "end_s": float(track["time_s"].max()),
                "frames": len(track),
                "dominant": classes[int(share.argmax())],
                **{f"mean_{c}": p for c, p in zip(classes, probabilities.mean(axis=0))},
                **{f"share_{c}": s for c, s in zip(classes, share)},
            }
        )
    return pd.DataFrame(rows)


def summarize(paths: list[Path], settings: dict[str, object]) -> pd.DataFrame:
    """The track summary of every video CSV (named by its file name without ``.csv``)."""
    names = [p.name.removesuffix(".csv") for p in paths]
    clash = next((n for n in names if names.count(n) > 1), None)
    if clash is not None:
        raise FerflowError(f"{clash}: two video CSVs share this name")
    parts, all_classes = [], None
    for path, name in zip(paths, names):
        table, classes = read_video_csv(path)
        if all_classes not in (None, classes):
            raise FerflowError(f"{path}: classes {classes} differ from the other CSVs' {all_classes}")
        all_classes = classes
        parts.append(track_summary(name, table, classes, settings))
    columns = ["video", "face_id", "start_s", "end_s", "frames", "dominant"]
    columns += [f"{w}_{c}" for w in ("mean", "share") for c in all_classes or []]
    return pd.concat([pd.DataFrame(columns=columns), *parts], ignore_index=True)[columns]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("csvs", nargs="+", type=Path, metavar="CSV", help="per-video CSVs of ferflow predict --csv")
    parser.add_argument("--out", required=True, type=Path, help="the track summary CSV to write")
    add_settings_argument(parser, "summarize-videos")


def run(args: argparse.Namespace) -> int:
    check_outputs([args.out], args.csvs)
    summary = summarize(args.csvs, args.settings)
    with atomic_path(args.out) as tmp:
        summary.to_csv(tmp, index=False, float_format="%.5g")
    print(f"{len(summary)} face track(s) in {len(args.csvs)} video(s); wrote {args.out}")
    return 0
