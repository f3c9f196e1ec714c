"""The embedded synthetic datasets: procedurally drawn faces whose expression lives in their geometry.

Each face is drawn with Pillow (3× supersampled, then reduced) from a parameter vector:

- **identity** (independent of the class): face width and height, skin tone, hair colour, hairline
  and whether there is hair at all, eye spacing and size, brow thickness, mouth height, background;
- **expression** (class-conditional): brow height, brow tilt (inner ends down for anger, up for
  sadness and fear), brow arch, eye openness, mouth width, mouth curve (corners up or down), mouth
  openness, teeth, lip asymmetry and nose wrinkles (disgust). Each face has an intensity in
  [0.5, 1] that blends its class's prototype with the neutral one, and every parameter is jittered,
  so classes overlap (weak expressions look neutral; fear and surprise share wide eyes) — separable
  by a small CNN, not trivially;
- **nuisance**: position, scale, rotation, a lighting gradient, contrast, blur and sensor noise.

:func:`generate` gives FER2013-like 48×48 grayscale splits whose class counts follow FER2013's
imbalance (disgust ~1.5 %, happy ~25 %; at least 2 images per class and split).
:func:`write_affectnet_like` writes an AffectNet-like folder (96×96 RGB JPEGs in AffectNet's folder
names, a ``labels.csv`` whose second labelling disagrees with the folder for about a quarter of the
rows, and a few files absent from it). Both are deterministic for a seed.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ferflow.classes import CLASS_NAMES
from ferflow.config import default
from ferflow.errors import FerflowError
from ferflow.storage import Split

FER2013_TRAIN_COUNTS: dict[str, int] = {
    "angry": 3995,
    "disgust": 436,
    "fear": 4097,
    "happy": 7215,
    "neutral": 4965,
    "sad": 4830,
    "surprise": 3171,
}
"""Class counts of FER2013's training split: the synthetic data's class proportions."""

SUPERSAMPLE = 3

# Expression prototypes: brow_h (brow above eye), brow_tilt (+: inner ends down), arch, eye_open,
# mouth_w (half-width), curve (+: corners up), open (lip gap), teeth (0-1), asym, wrinkle.
PARAMS: tuple[str, ...] = (
    "brow_h",
    "brow_tilt",
    "arch",
    "eye_open",
    "mouth_w",
    "curve",
    "open",
    "teeth",
    "asym",
    "wrinkle",
)
PROTOTYPES: dict[str, tuple[float, ...]] = {
    "angry": (0.08, 0.14, 0.00, 0.65, 0.28, -0.06, 0.05, 0.6, 0.00, 0.4),
    "disgust": (0.12, 0.06, 0.00, 0.45, 0.30, -0.08, 0.07, 0.3, 0.15, 1.1),
    "fear": (0.32, -0.10, 0.02, 1.50, 0.40, -0.06, 0.20, 0.5, 0.00, 0.0),
    "happy": (0.21, 0.00, 0.04, 0.55, 0.44, 0.26, 0.14, 1.0, 0.00, 0.0),
    "neutral": (0.20, 0.00, 0.03, 1.00, 0.31, 0.00, 0.00, 0.0, 0.00, 0.0),
    "sad": (0.19, -0.13, 0.00, 0.70, 0.29, -0.19, 0.00, 0.0, 0.00, 0.0),
    "surprise": (0.38, -0.02, 0.08, 1.70, 0.21, 0.00, 0.40, 0.2, 0.00, 0.0),
}
JITTER = np.array([0.03, 0.03, 0.025, 0.13, 0.04, 0.04, 0.035, 0.3, 0.035, 0.25])
"""Standard deviation of each expression parameter around its (intensity-blended) prototype."""


def class_counts(n: int, proportions: dict[str, int] = FER2013_TRAIN_COUNTS, minimum: int = 2) -> np.ndarray:
    """``n`` images apportioned to the classes like ``proportions`` (largest remainder), each ≥ ``minimum``."""
    if n < minimum * len(CLASS_NAMES):
        raise FerflowError(f"synthetic split of {n} images is too small: needs at least {minimum * len(CLASS_NAMES)}")
    p = np.array([proportions[c] for c in CLASS_NAMES], dtype=float)
    p /= p.sum()
    counts = np.maximum(np.floor(p * n).astype(int), minimum)
    while counts.sum() < n:
        counts[np.argmax(p * n - counts)] += 1
    while counts.sum() > n:
        counts[np.argmax(np.where(counts > minimum, counts - p * n, -np.inf))] -= 1
    return counts


def _expressions(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Expression parameters ``(N, len(PARAMS))`` of faces with the given labels."""
    proto = np.array([PROTOTYPES[c] for c in CLASS_NAMES])
    neutral = proto[CLASS_NAMES.index("neutral")]
    intensity = rng.uniform(0.5, 1.0, size=(len(labels), 1))
    expr = neutral + intensity * (proto[labels] - neutral) + rng.normal(size=(len(labels), len(PARAMS))) * JITTER
    expr[:, PARAMS.index("asym")] *= rng.choice([-1.0, 1.0], size=len(labels))
    return expr


def _identities(n: int, rng: np.random.Generator, colour: bool) -> list[dict]:
    """Per-face identity and pose parameters (class-independent)."""
    skin_rgb = np.array(
        [[236, 205, 180], [214, 172, 140], [190, 140, 105], [150, 105, 75], [110, 75, 55], [245, 220, 200]]
    )
    hair_rgb = np.array([[25, 20, 18], [70, 45, 30], [120, 85, 50], [200, 170, 110], [140, 140, 140], [95, 35, 20]])
    out = []
    for _ in range(n):
        if colour:
            skin = skin_rgb[rng.integers(len(skin_rgb))] * rng.uniform(0.85, 1.1) + rng.normal(0, 8, 3)
            hair = hair_rgb[rng.integers(len(hair_rgb))] * rng.uniform(0.7, 1.2)
            bg = rng.uniform(20, 235, 3)
        else:
            skin = np.full(3, rng.uniform(95, 215))
            hair = np.full(3, rng.uniform(10, 110))
            bg = np.full(3, rng.uniform(15, 240))
        out.append(
            {
                "face_w": rng.uniform(0.82, 1.0),
                "face_h": rng.uniform(1.12, 1.36),
                "skin": skin,
                "hair": hair,
                "bg": bg,
                "has_hair": rng.random() < 0.8,
                "hairline": rng.uniform(-1.05, -0.7),
                "eye_dx": rng.uniform(0.32, 0.42),
                "eye_y": rng.uniform(-0.26, -0.1),
                "eye_w": rng.uniform(0.16, 0.21),
                "brow_t": rng.uniform(0.06, 0.1),
                "mouth_y": rng.uniform(0.5, 0.66),
                "clutter": int(rng.integers(0, 2)),
                "seed": int(rng.integers(2**31)),
                "scale": rng.uniform(0.33, 0.40),
                "angle": np.deg2rad(rng.normal(0, 6)),
                "shift": rng.normal(0, 0.035, 2),
            }
        )
    return out


def _colour(rgb: np.ndarray, colour: bool) -> tuple[int, ...] | int:
    r, g, b = (min(max(int(round(float(v))), 0), 255) for v in rgb)
    return (r, g, b) if colour else int(round(0.299 * r + 0.587 * g + 0.114 * b))


_CIRCLES: dict[int, np.ndarray] = {}


def _ellipse(cx: float, cy: float, rx: float, ry: float, k: int = 28) -> np.ndarray:
    if k not in _CIRCLES:
        t = np.linspace(0, 2 * np.pi, k, endpoint=False)
        _CIRCLES[k] = np.stack([np.cos(t), np.sin(t)], axis=1)
    return _CIRCLES[k] * (rx, ry) + (cx, cy)


def _curve(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.stack([x, y], axis=1)


def draw_face(expr: np.ndarray, ident: dict, size: int, colour: bool) -> Image.Image:
    """One face (``size``×``size``, mode RGB or L) from expression and identity parameters.

    Shapes are collected in face coordinates (x right, y down, face half-width ~1), transformed to
    pixels together, then drawn in order: background blobs, hair, face, fringe, eyes, brows, nose, mouth.
    """
    e = dict(zip(PARAMS, expr))
    shapes: list[tuple[str, np.ndarray, tuple[int, ...] | int, int]] = []  # (polygon|line, points, fill, width)
    big = size * SUPERSAMPLE
    unit = big * ident["scale"]
    line, lip_w = max(1, round(unit * 0.055)), max(1, round(unit * 0.07))
    fw, fh, skin, hair = ident["face_w"], ident["face_h"], ident["skin"], ident["hair"]
    col = lambda rgb: _colour(rgb, colour)  # noqa: E731

    crng = np.random.default_rng(ident["seed"])
    for _ in range(ident["clutter"]):  # background blobs
        cx, cy = crng.uniform(-1.6, 1.6, 2)
        shapes.append(("polygon", _ellipse(cx, cy, *crng.uniform(0.2, 0.7, 2)), col(crng.uniform(0, 255, 3)), 0))
    if ident["has_hair"]:
        shapes.append(("polygon", _ellipse(0, -0.12, fw * 1.1, fh * 1.02), col(hair), 0))
    face = _ellipse(0, 0, fw, fh, 40)
    shapes.append(("polygon", face, col(skin), 0))
    fringe = face[face[:, 1] < ident["hairline"]]
    if ident["has_hair"] and len(fringe) >= 3:
        shapes.append(("polygon", fringe, col(hair), 0))

    dark, white, pupil, brow_col = col(skin * 0.45), col(np.minimum(skin * 1.35, 245)), col(hair * 0.4), col(hair * 0.8)
    brow_w = max(1, round(unit * ident["brow_t"]))
    for side in (-1.0, 1.0):
        ex, ey, ew = side * ident["eye_dx"], ident["eye_y"], ident["eye_w"]
        eh = max(0.015, 0.095 * e["eye_open"])
        eye = _ellipse(ex, ey, ew, eh, 20)
        pr = min(0.085, eh)
        shapes.append(("polygon", eye, white, 0))
        shapes.append(("polygon", _ellipse(ex, ey + 0.2 * (eh - pr), pr, pr * 0.95 if eh > pr else eh, 14), pupil, 0))
        shapes.append(("line", eye[10:], dark, line))  # upper lid
        inner, outer = side * (ident["eye_dx"] - 0.11), side * (ident["eye_dx"] + 0.15)
        by = ey - eh - e["brow_h"]
        brow = np.array(
            [[inner, by + e["brow_tilt"]], [(inner + outer) / 2, by - e["arch"]], [outer, by - 0.25 * e["brow_tilt"]]]
        )
        shapes.append(("line", brow, brow_col, brow_w))

    nose_y, my = ident["eye_y"] + 0.1, ident["mouth_y"]
    shapes.append(("line", np.array([[0.02, nose_y], [0.07, my - 0.2], [-0.05, my - 0.17]]), col(skin * 0.7), line))
    if e["wrinkle"] > 0.4:
        fill = col(skin * (1.0 - 0.35 * min(e["wrinkle"], 1.4)))
        for k in range(2):
            y = nose_y + 0.02 + 0.06 * k
            shapes.append(("line", np.array([[-0.09, y + 0.02], [0, y], [0.09, y + 0.02]]), fill, line))

    mw = max(0.1, e["mouth_w"])
    x = np.linspace(-mw, mw, 17)
    u = x / mw
    upper = my - e["curve"] * u**2 + e["asym"] * (u + 1) / 2 - e["curve"] * 0.3
    lower = upper + max(e["open"], 0.0) * (1 - u**2) ** 0.7
    if e["open"] > 0.03:
        shapes.append(("polygon", np.concatenate([_curve(x, upper), _curve(x, lower)[::-1]]), col(skin * 0.2), 0))
        if e["teeth"] > 0.5:
            teeth = upper + 0.45 * (lower - upper)
            shapes.append(
                ("polygon", np.concatenate([_curve(x, upper), _curve(x, teeth)[::-1]]), col(np.full(3, 235.0)), 0)
            )
    lip = col(skin * np.array([0.75, 0.5, 0.5])) if colour else col(skin * 0.55)
    shapes.append(("line", _curve(x, upper), lip, lip_w))
    shapes.append(("line", _curve(x, lower), lip, lip_w))

    points = np.concatenate([p for _, p, _, _ in shapes])
    c, s = np.cos(ident["angle"]), np.sin(ident["angle"])
    pixels = big * (0.5 + ident["shift"]) + unit * (points @ np.array([[c, s], [-s, c]]))
    image = Image.new("RGB" if colour else "L", (big, big), col(ident["bg"]))
    draw = ImageDraw.Draw(image)
    start = 0
    for kind, p, fill, width in shapes:
        xy = pixels[start : start + len(p)].ravel().tolist()
        start += len(p)
        if kind == "polygon":
            draw.polygon(xy, fill=fill)
        else:
            draw.line(xy, fill=fill, width=width, joint="curve")
    return image.reduce(SUPERSAMPLE)


def _photometric(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lighting gradient, contrast, blur and noise on uint8 images ``(N, H, W[, C])`` (vectorised)."""
    n, h, w = images.shape[:3]
    x = images.astype(np.float32)
    yy, xx = np.meshgrid(
        np.linspace(-1, 1, h, dtype=np.float32), np.linspace(-1, 1, w, dtype=np.float32), indexing="ij"
    )
    phi = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    strength = rng.uniform(0, 0.3, n).astype(np.float32)
    light = 1 + strength[:, None, None] * (np.cos(phi)[:, None, None] * xx + np.sin(phi)[:, None, None] * yy)
    contrast = rng.uniform(0.8, 1.15, n).astype(np.float32)[:, None, None]
    if x.ndim == 4:
        light, contrast = light[..., None], contrast[..., None]
    mean = x.mean(axis=tuple(range(1, x.ndim)), keepdims=True)
    x = (mean + (x - mean) * contrast) * light
    blur = rng.random(n) < 0.3  # a [1, 2, 1] blur, partly blended in, on some faces
    if blur.any():
        pad = np.pad(x[blur], [(0, 0), (1, 1), (1, 1)] + [(0, 0)] * (x.ndim - 3), mode="edge")
        rows = (pad[:, :-2] + 2 * pad[:, 1:-1] + pad[:, 2:]) / 4
        amount = rng.uniform(0.2, 0.6, int(blur.sum())).astype(np.float32).reshape((-1,) + (1,) * (x.ndim - 1))
        x[blur] = (1 - amount) * x[blur] + amount * (rows[:, :, :-2] + 2 * rows[:, :, 1:-1] + rows[:, :, 2:]) / 4
    sigma = rng.uniform(2, 6, n).astype(np.float32).reshape((n,) + (1,) * (x.ndim - 1))
    x += rng.normal(size=x.shape).astype(np.float32) * sigma
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def render(labels: np.ndarray, rng: np.random.Generator, size: int = 48, colour: bool = False) -> np.ndarray:
    """Faces of the given labels: uint8 ``(N, size, size)`` gray or ``(N, size, size, 3)`` RGB."""
    expr = _expressions(labels, rng)
    idents = _identities(len(labels), rng, colour)
    shape = (len(labels), size, size, 3) if colour else (len(labels), size, size)
    images = np.empty(shape, dtype=np.uint8)
    for i in range(len(labels)):
        images[i] = np.asarray(draw_face(expr[i], idents[i], size, colour))
    return _photometric(images, rng)


def _split(n: int, rng: np.random.Generator, prefix: str) -> Split:
    counts = class_counts(n)
    labels = rng.permutation(np.repeat(np.arange(len(CLASS_NAMES)), counts))
    ids = np.array([f"synthetic:{prefix}_{i:06d}" for i in range(n)])
    return Split(render(labels, rng), labels, ids)


def generate(n_train: int, n_test: int, seed: int) -> dict[str, Split]:
    """FER2013-like synthetic splits ``{"train", "test"}`` (48×48 gray, FER2013's class imbalance)."""
    train_seq, test_seq = np.random.SeedSequence(seed).spawn(2)
    return {
        "train": _split(n_train, np.random.default_rng(train_seq), "Training"),
        "test": _split(n_test, np.random.default_rng(test_seq), "PublicTest"),
    }


AFFECTNET_FOLDERS: dict[str, str] = {"anger": "angry", "disgust": "disgust", "surprise": "surprise"}
AFFECTNET_LABELS: tuple[str, ...] = ("anger", "contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def write_affectnet_like(root: str | os.PathLike[str], per_class: int, seed: int) -> Path:
    """Write ``root/affectnet/<anger|disgust|surprise>/image<id>.jpg`` (96×96 RGB) + ``labels.csv``.

    ``labels.csv`` has AffectNet's columns ``,pth,label,relFCs``; about a quarter of its labels disagree
    with the folder and about 4 % of the files are absent from it. An existing ``root/affectnet`` is
    replaced; the folder appears only once complete. Returns ``root/affectnet``.
    """
    if per_class < 1:
        raise FerflowError(f"per_class must be at least 1, got {per_class}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 96]))
    target = Path(root) / "affectnet"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".affectnet.", dir=target.parent))
    try:
        folders = list(AFFECTNET_FOLDERS)
        numbers = np.sort(rng.choice(40 * per_class * len(folders), size=per_class * len(folders), replace=False))
        rows = []
        for k, folder in enumerate(folders):
            labels = np.full(per_class, CLASS_NAMES.index(AFFECTNET_FOLDERS[folder]))
            images = render(labels, rng, size=96, colour=True)
            (tmp / folder).mkdir()
            for i, image in enumerate(images):
                name = f"image{numbers[k * per_class + i]:07d}.jpg"
                Image.fromarray(image).save(tmp / folder / name, quality=90)
                if rng.random() < 0.04:
                    continue  # absent from labels.csv, like some real files
                label = folder if rng.random() < 0.75 else rng.choice([x for x in AFFECTNET_LABELS if x != folder])
                rows.append((f"{folder}/{name}", label, round(float(rng.uniform(0.6, 0.95)), 6)))
        with open(tmp / "labels.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["", "pth", "label", "relFCs"])
            writer.writerows((i, *row) for i, row in enumerate(rows))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def write_fer_folders(out: Path, splits: dict[str, Split]) -> None:
    """Write splits as Kaggle-style class folders: ``train/<class>/Training_<n>.png``,
    ``test/<class>/PublicTest_<n>.png``."""
    prefix = {"train": "Training", "test": "PublicTest"}
    for split, data in splits.items():
        for name in CLASS_NAMES:
            (out / split / name).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(data.images, data.labels)):
            Image.fromarray(image).save(out / split / CLASS_NAMES[label] / f"{prefix[split]}_{i:06d}.png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kind",
        choices=["fer", "affectnet"],
        default="fer",
        help="fer: train/<class>/ and test/<class>/ PNGs; affectnet: affectnet/<folder>/ JPEGs + labels.csv",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to create (must not exist or be empty)")
    parser.add_argument("--train", type=int, default=default("dataset.synthetic.train"), help="training images (fer)")
    parser.add_argument("--test", type=int, default=default("dataset.synthetic.test"), help="test images (fer)")
    parser.add_argument(
        "--per-class",
        type=int,
        default=default("affectnet.synthetic_per_class"),
        help="images per class folder (affectnet)",
    )
    parser.add_argument("--seed", type=int, default=default("seed"), help="seed of the generated faces")


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FerflowError(f"{out}: already exists and is not an empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if args.kind == "fer":
            splits = generate(args.train, args.test, args.seed)
            write_fer_folders(tmp, splits)
            summary = ", ".join(f"{k} {len(v)}" for k, v in splits.items())
        else:
            write_affectnet_like(tmp, args.per_class, args.seed)
            summary = f"{args.per_class} per class in {', '.join(AFFECTNET_FOLDERS)}"
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {out} ({args.kind}: {summary})")
    return 0
