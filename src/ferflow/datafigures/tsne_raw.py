"""ferflow tsne-raw: t-SNE coordinates of raw test pixels (PCA, then 2-D t-SNE)."""

from __future__ import annotations

import argparse

import numpy as np

from ferflow.errors import FerflowError
from ferflow.storage import check_outputs, load_split
from ferflow.tsne import add_tsne_arguments, embed_2d, write_coords


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", required=True, help="split file (.npz), e.g. the raw stage's test.npz")
    parser.add_argument("--out", required=True, help="CSV of coordinates (index,label,class,x,y)")
    add_tsne_arguments(parser, "tsne-raw")


def run(args: argparse.Namespace) -> int:
    check_outputs([args.out], [args.split])
    split = load_split(args.split)
    if len(split) < 4:
        raise FerflowError(f"{args.split}: t-SNE needs at least 4 images, found {len(split)}")
    pixels = split.images.reshape(len(split), -1).astype(np.float32) / 255.0
    coords, labels, index = embed_2d(pixels, split.labels, **args.settings, seed=args.seed)
    write_coords(args.out, coords, labels, index)
    print(f"wrote {args.out}: {len(index)} of {len(split)} images embedded")
    return 0
