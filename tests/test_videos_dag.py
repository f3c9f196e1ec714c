"""The batch-video target: `snakemake videos` predicts a folder of clips, one CSV each, and summarises each face
track (with smoothing); outputs are cached per video. ``ferflow summarize-videos`` on hand-made CSVs."""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import bin_path, copy_workflow
from ferflow.classes import CLASS_NAMES
from ferflow.cli import main
from ferflow.predict.scenes import drawn_face, moving_face_clip
from ferflow.predict.summary import VIDEO_COLUMNS

CLIPS = {"walk": (150, 30), "small": (110, 24), "big": (190, 36)}  # name: (face side, frames)


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(bin_path('ferflow')).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [bin_path("snakemake"), "--cores", "2", "--configfile", "workflow/presets/tiny.yaml", "videos.yaml", *args]
    proc = subprocess.run(cmd, cwd=workdir, env=env, text=True, capture_output=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc


@pytest.fixture(scope="module")
def videos_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workflow with three clips in clips/, run to the videos target with mode smoothing."""
    workdir = copy_workflow(tmp_path_factory.mktemp("videos"))
    (workdir / "clips" / "sub").mkdir(parents=True)
    for name, (side, frames) in CLIPS.items():
        folder = workdir / "clips" / ("sub" if name == "big" else "")
        moving_face_clip(folder / f"{name}.mp4", np.repeat(drawn_face(side)[..., None], 3, -1), frames, fps=10.0)
    (workdir / "clips" / "notes.txt").write_text("not a video")
    (workdir / "videos.yaml").write_text("videos:\n  folder: clips\n  fps: 5\n  smoothing: mode\n  mode_window: 3\n")
    snakemake(workdir, "--", "videos")
    return workdir


def test_one_csv_and_plot_per_video_and_one_summary_row_per_track(videos_run: Path) -> None:
    (out,) = (videos_run / "results").glob("*/videos")  # results/<dataset.name>/videos
    assert sorted(p.name for p in out.iterdir()) == ["frames", "tracks.csv"]
    assert sorted(p.name for p in (out / "frames").iterdir()) == sorted(
        [f"{n}.csv" for n in CLIPS] + [f"{n}.png" for n in CLIPS]
    )
    tracks = pd.read_csv(out / "tracks.csv")
    assert sorted(tracks["video"]) == sorted(CLIPS)
    for _, track in tracks.iterrows():
        frames = pd.read_csv(out / "frames" / f"{track['video']}.csv")
        assert list(frames.columns) == [*VIDEO_COLUMNS, *CLASS_NAMES]
        assert track["face_id"] == 1 and set(frames["face_id"]) == {1}
        assert track["frames"] == len(frames) == CLIPS[track["video"]][1] // 2  # 5 of the clip's 10 frames/s
        assert track["dominant"] in CLASS_NAMES
        shares = track[[f"share_{c}" for c in CLASS_NAMES]]
        assert shares.sum() == pytest.approx(1.0, abs=1e-4) and shares.idxmax() == f"share_{track['dominant']}"
        means = track[[f"mean_{c}" for c in CLASS_NAMES]].to_numpy(float)
        assert np.allclose(means, frames[list(CLASS_NAMES)].mean().to_numpy(), atol=1e-4)


def test_outputs_are_cached_per_video(videos_run: Path) -> None:
    assert "Nothing to be done" in snakemake(videos_run, "-n", "--", "videos").stdout
    extra = videos_run / "clips" / "extra.mp4"  # one more video: only its job and the summary are planned
    moving_face_clip(extra, np.repeat(drawn_face(120)[..., None], 3, -1), 6, fps=10.0)
    proc = snakemake(videos_run, "-n", "--quiet", "rules", "--", "videos")
    dry = proc.stdout + proc.stderr
    counts = [line.split() for line in dry.splitlines()]
    jobs = {w[0]: int(w[1]) for w in counts if len(w) == 2 and w[1].isdigit()}
    assert jobs.get("predict_video") == 1 and jobs.get("summarize_videos") == 1, dry
    extra.unlink()


def write_track(path: Path, emotions: list[str], confidence: float = 0.7) -> None:
    """A video CSV of one track whose frame k is most likely ``emotions[k]``."""
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow([*VIDEO_COLUMNS, *CLASS_NAMES])
        for k, emotion in enumerate(emotions):
            p = [(1 - confidence) / (len(CLASS_NAMES) - 1)] * len(CLASS_NAMES)
            p[CLASS_NAMES.index(emotion)] = confidence
            out.writerow([k * 0.2, k, 1, 0, 0, 50, 50, emotion, *p])


@pytest.mark.parametrize(
    "settings, happy_share",
    [
        ('{"smoothing": "none"}', 4 / 6),
        ('{"smoothing": "mode", "mode_window": 3}', 1.0),  # each lone "sad" is outvoted by its neighbours
        ('{"smoothing": "ema", "ema_alpha": 0.3}', 1.0),  # one sad frame does not outweigh the happy average
        ('{"smoothing": "ema", "ema_alpha": 1.0}', 4 / 6),  # alpha 1: the newest frame alone
    ],
)
def test_smoothing_changes_the_share_of_time(tmp_path: Path, capsys, settings: str, happy_share: float) -> None:
    write_track(tmp_path / "clip.csv", ["happy", "sad", "happy", "happy", "sad", "happy"])
    out = tmp_path / "tracks.csv"
    assert main(["summarize-videos", str(tmp_path / "clip.csv"), "--out", str(out), "--settings", settings]) == 0
    (row,) = pd.read_csv(out).to_dict("records")
    assert row["share_happy"] == pytest.approx(happy_share)
    assert row["dominant"] == "happy" and (row["start_s"], row["end_s"], row["frames"]) == (0.0, 1.0, 6)
    assert row["mean_happy"] == pytest.approx((4 * 0.7 + 2 * 0.05) / 6)


def test_a_csv_that_is_not_a_video_csv_is_named_in_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "other.csv"
    bad.write_text("a,b\n1,2\n")
    out = tmp_path / "tracks.csv"
    assert main(["summarize-videos", str(bad), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and "not a CSV of ferflow predict" in err
    assert not out.exists()
