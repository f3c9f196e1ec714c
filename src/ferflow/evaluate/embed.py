"""Penultimate-layer embeddings of a checkpoint on the test split, reduced to 2-D by t-SNE.

The features are ``model.features(x)`` (the layer before the classifier); :func:`ferflow.tsne.embed_2d`
subsamples (stratified, seeded), applies PCA and a seeded t-SNE, and the coordinates are written as CSV
(``index,label,class,x,y``, the format of :func:`ferflow.tsne.write_coords`; ``index`` is the row of the
image in the split file, so ``ids[index]`` names it). Plotting happens elsewhere, so a figure setting
never recomputes the embedding.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ferflow import checkpoint, tsne
from ferflow.cli import positive_int
from ferflow.config import default
from ferflow.errors import FerflowError
from ferflow.inference import EVAL_BATCH, batched_outputs, in_channels_of, load_labelled_images
from ferflow.storage import check_outputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a ferflow checkpoint (best.pt)")
    parser.add_argument("--data", required=True, help="labelled images (split .npz, class folders, zip or ICML CSV)")
    parser.add_argument("--out", required=True, help="t-SNE coordinates CSV to write")
    tsne.add_tsne_arguments(parser, "embed")
    parser.add_argument("--batch-size", type=positive_int, default=EVAL_BATCH, help="images per inference batch")
    parser.add_argument("--threads", type=positive_int, default=default("threads"), help="CPU threads for inference")


def penultimate_features(checkpoint_path: str, images: np.ndarray, batch_size: int) -> np.ndarray:
    """``model.features`` of a checkpoint's model on uint8 images → ``(N, D)`` float32."""
    model, ckpt = checkpoint.load_model(checkpoint_path)
    return batched_outputs(model.features, images, in_channels_of(ckpt), batch_size)


def run(args: argparse.Namespace) -> int:
    check_outputs([args.out], [args.checkpoint, args.data])
    torch.set_num_threads(args.threads)
    split = load_labelled_images(args.data)
    features = penultimate_features(args.checkpoint, split.images, args.batch_size)
    try:
        coords, labels, index = tsne.embed_2d(features, split.labels, **args.settings, seed=args.seed)
    except ValueError as exc:
        raise FerflowError(f"{args.data}: {exc}") from None
    tsne.write_coords(args.out, coords, labels, index)
    print(f"t-SNE of {len(index)} of {len(split)} images ({features.shape[1]}-d features) -> {args.out}")
    return 0
