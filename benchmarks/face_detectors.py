"""Face detectors side by side: OpenCV's Haar cascade (``--detector haar``) and dlib's HOG detector (``dlib``).

    .venv/bin/python benchmarks/face_detectors.py                 # 20 scenes with faces, 5 without
    .venv/bin/python benchmarks/face_detectors.py --scenes 50 --seed 1

Real AffectNet faces (the sample at ``--affectnet``, 96×96 RGB), resized to random sides of 60-190 px, are
pasted at random into up to 6 of the 12 cells (200 px) of face-free 800×600 scenes (a noisy colour gradient,
as tests/test_predict.py builds them; a small copy here, since benchmarks do not import the tests), and
``--empty`` scenes have no face at all. Both detectors see the same grayscale frames, as ``ferflow predict``
converts photos, with its defaults (``--min-face 30``, detection downscaled to 1600 px). A pasted face is
found when a box overlaps it with IoU > 0.4; a box that overlaps no pasted face so is a false box. Times are
medians over frames of one detector call, OpenCV on 2 threads (dlib runs on one): wall-clock milliseconds,
and the CPU milliseconds of this process (all its threads), which stay close to a quiet machine's where
other work shares the CPU. The detectors take turns on each frame, so that such work slows both alike.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ferflow.detection import DETECTORS, Detector
from ferflow.device import cpu_kind
from ferflow.faces import to_grayscale_array
from ferflow.predict.scenes import background, paste
from ferflow.predict.tracking import BoxT, iou

REPO = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT, CELL = 800, 600, 200
SIDES = (60, 190)  # pasted face sides, inclusive
BANDS = ((60, 99), (100, 139), (140, 190))  # face sides reported apart
IOU = 0.4


def scenes(archive_path: Path, n_faces: int, n_empty: int, seed: int) -> list[tuple[np.ndarray, list[BoxT]]]:
    """``(grayscale frame, pasted boxes)``: ``n_faces`` scenes of 1 to 6 faces, then ``n_empty`` without."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 7, n_faces)
    with zipfile.ZipFile(archive_path) as archive:
        names = sorted(n for n in archive.namelist() if n.lower().endswith(".jpg"))
        chosen = iter(rng.choice(len(names), int(counts.sum()), replace=False))
        frames = []
        for count in [*counts, *[0] * n_empty]:
            faces = [
                np.asarray(
                    Image.open(io.BytesIO(archive.read(names[next(chosen)])))
                    .convert("RGB")
                    .resize((side, side), Image.Resampling.LANCZOS)
                )
                for side in rng.integers(SIDES[0], SIDES[1] + 1, count)
            ]
            scene = background(rng, WIDTH, HEIGHT)
            boxes = paste(scene, faces, rng, CELL, random_cells=True)
            frames.append((to_grayscale_array(Image.fromarray(scene)), boxes))
    return frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=20, help="scenes with 1 to 6 faces")
    parser.add_argument("--empty", type=int, default=5, help="scenes without a face")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--affectnet", type=Path, default=REPO.parent / "shared" / "data" / "affectnet-sample.zip")
    args = parser.parse_args()
    if not args.affectnet.is_file():
        print(f"face_detectors: {args.affectnet} is absent (the AffectNet sample, ../shared/data)", file=sys.stderr)
        return 1
    cv2.setNumThreads(2)
    detectors: dict[str, Detector] = {name: cls() for name, cls in DETECTORS.items()}
    frames = scenes(args.affectnet, args.scenes, args.empty, args.seed)
    for detector in detectors.values():  # warm-up
        detector(frames[0][0])
    seconds: dict[str, list[float]] = {name: [] for name in detectors}
    cpu: dict[str, list[float]] = {name: [] for name in detectors}
    found = {name: {band: 0 for band in BANDS} for name in detectors}
    false = dict.fromkeys(detectors, 0)
    for gray, truth in frames:
        for name, detector in detectors.items():
            began, began_cpu = time.perf_counter(), time.process_time()
            boxes = detector(gray)
            seconds[name].append(time.perf_counter() - began)
            cpu[name].append(time.process_time() - began_cpu)
            for t in truth:
                if any(iou(t, b) > IOU for b in boxes):
                    found[name][next(band for band in BANDS if band[0] <= t[2] <= band[1])] += 1
            false[name] += sum(all(iou(t, b) <= IOU for t in truth) for b in boxes)
    pasted = {band: sum(band[0] <= t[2] <= band[1] for _, truth in frames for t in truth) for band in BANDS}
    total = sum(pasted.values())
    print(
        f"{len(frames)} scenes {WIDTH}×{HEIGHT}: {args.scenes} with {total} real AffectNet faces of "
        f"{SIDES[0]}-{SIDES[1]} px, {args.empty} without a face; seed {args.seed}"
    )
    print(f"CPU: {cpu_kind()}; OpenCV on 2 threads, dlib on 1")
    bands = "  ".join(f"{f'{lo}-{hi} px ({pasted[lo, hi]})':>14}" for lo, hi in BANDS)
    print(f"{'detector':<9} {'found':>6} {'missed':>6} {'false boxes':>11}  {bands}  {'ms a frame':>10}  {'CPU ms':>7}")
    for name in detectors:
        n_found = sum(found[name].values())
        by_band = "  ".join(f"{found[name][band]:>14}" for band in BANDS)
        ms, cpu_ms = (1000 * statistics.median(times[name]) for times in (seconds, cpu))
        print(f"{name:<9} {n_found:>6} {total - n_found:>6} {false[name]:>11}  {by_band}  {ms:>10.1f}  {cpu_ms:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
