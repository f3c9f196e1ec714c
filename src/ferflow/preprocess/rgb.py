"""``ferflow rgb``: a data stage's grayscale images as 3 identical channels (the study's model input)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ferflow.errors import FerflowError
from ferflow.faces import to_rgb
from ferflow.storage import SPLITS, load_stage, save_stage


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--in-dir", required=True, help="grayscale data stage directory")
    parser.add_argument("--out", required=True, help="RGB data stage directory to write")


def run(args: argparse.Namespace) -> int:
    splits = load_stage(Path(args.in_dir))
    try:
        converted = {name: to_rgb(splits[name]) for name in SPLITS}
    except ValueError as exc:
        raise FerflowError(f"{args.in_dir}: {exc}") from None
    save_stage(Path(args.out), converted)
    print(f"wrote {args.out}: " + ", ".join(f"{name} {converted[name].images.shape}" for name in SPLITS))
    return 0
