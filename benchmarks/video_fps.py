"""Frames/s of ``ferflow predict`` on a 640×480 video, end to end (decode, detect, classify, track, CSV).

    .venv/bin/python benchmarks/video_fps.py                                     # random-init resnet
    .venv/bin/python benchmarks/video_fps.py --checkpoint results/fer2013/runs/resnet/final/model.int8.onnx
    .venv/bin/python benchmarks/video_fps.py --checkpoint src/ferflow/assets/fernetfast.pt --frames 60 --tta crops10

The clip (``--frames`` frames at 30 frames/s, mp4v) shows a real AffectNet face (the sample at
``--affectnet``; a drawn face where it is absent) crossing a static scene, built with
:mod:`ferflow.predict.scenes`. Every frame is analysed (no ``--every``); ``--redetect`` is passed on (default 5, as in
predict; 1 runs Haar over every whole frame). The command runs in this process with ``--threads``
threads, after one untimed warm-up run on the first 30 frames; the wall time includes loading the
model. Speed does not depend on the weights, so a random-init checkpoint of the architecture measures
the same as a trained one. Reference: ≥ 60 frames/s on 2 cores.

The process's CPU time is printed too: on a machine shared with other work the wall-clock rate drops
with the load, while CPU seconds per frame stay close to what a quiet machine needs (two cores
deliver two CPU seconds per second, less what OpenCV and the model cannot run in parallel).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ferflow import checkpoint
from ferflow.cli import main as ferflow
from ferflow.predict.scenes import affectnet_faces, drawn_face, moving_face_clip

REPO = Path(__file__).resolve().parents[1]

TARGET_FPS = 60.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def face_image(affectnet: Path) -> np.ndarray:
    if affectnet.is_file():
        return affectnet_faces(affectnet)[0][1]
    print(f"{affectnet} absent: using a drawn face")
    return np.repeat(drawn_face(150)[..., None], 3, -1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="checkpoint or ONNX model (default: a random-init resnet)")
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--redetect", type=int, default=5, help="predict's --redetect (1: Haar on every whole frame)")
    parser.add_argument("--tta", default="auto", help="predict's --tta (auto: flip for the shipped model)")
    parser.add_argument("--affectnet", type=Path, default=REPO.parent / "shared" / "data" / "affectnet-sample.zip")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferflow-video-") as scratch:
        root = Path(scratch)
        model = args.checkpoint
        if model is None:
            model = str(root / "best.pt")
            checkpoint.save_untrained(model, "resnet", in_channels=3, num_classes=7, dropout=0.0)
        clip = root / "clip.mp4"
        moving_face_clip(clip, face_image(args.affectnet), args.frames)
        common = [
            "predict",
            str(clip),
            "--checkpoint",
            model,
            "--threads",
            str(args.threads),
            "--redetect",
            str(args.redetect),
            "--tta",
            args.tta,
            "--csv",
            str(root / "faces.csv"),
            "--plot",
            str(root / "faces.png"),
        ]
        ferflow([*common, "--max-frames", "30"])  # warm-up: imports, kernels, caches
        cpu_before, began = cpu_seconds(), time.perf_counter()
        code = ferflow(common)
        seconds, cpu = time.perf_counter() - began, cpu_seconds() - cpu_before
    if code != 0:
        return code
    fps = args.frames / seconds
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    name = model if args.checkpoint else "random-init resnet"
    met = "met" if fps >= TARGET_FPS else "NOT met"
    print(
        f"{args.frames} frames of 640×480 in {seconds:.2f} s, {args.threads} thread(s) ({name}): {fps:.1f} frames/s "
        f"end to end; reference ≥ {TARGET_FPS:.0f} frames/s: {met} (load average {load:.2f})"
    )
    print(
        f"CPU time {cpu:.2f} s: {1000 * cpu / args.frames:.2f} CPU ms per frame, "
        f"{args.frames / cpu:.1f} frames per CPU second"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
