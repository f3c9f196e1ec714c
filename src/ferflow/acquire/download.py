"""Acquisition: fetch a dataset from its source into a local cache, then the ``download`` stage.

Sources (:func:`resolve_source`):

- ``kaggle:<owner>/<dataset>``: the Kaggle API (``kaggle`` package). Credentials come from
  ``~/.kaggle/kaggle.json`` (or ``$KAGGLE_CONFIG_DIR/kaggle.json``), from ``KAGGLE_USERNAME`` and
  ``KAGGLE_KEY``, or from a Kaggle access token (``KAGGLE_API_TOKEN``, ``~/.kaggle/access_token``);
  they are checked before the package is imported, and their absence is a one-line error.
- ``http://`` / ``https://`` URL: downloaded with urllib to a temporary name, renamed when complete.
- a local path: a zip, a tar archive (``.tar.gz``, ``.tgz``, ``.tar``, ...), an extracted folder, or
  an ICML CSV file (returned as is). ``ferflow download`` reads a zip in place rather than extracting it.

Downloads are cached in ``<cache_dir>`` (e.g. ``resources/downloads``) and archives extracted once into
``<cache_dir>/extracted/<name>-<sha256 prefix>/`` (extracted into a temporary folder, renamed when
complete). The optional sha256 is checked on the archive (or downloaded file). Extraction is safe: a
member with an absolute path, a ``..`` component, or a link pointing outside the target is refused
with an error naming it.

The ``download`` stage (:func:`run`) then reads the layout (:mod:`ferflow.sources`) strictly — the
canonical data must be 48×48 grayscale: another size, a colour image, an unknown class folder or an
empty class is refused — carves a stratified, seeded validation split from train (the test split is
never used for model selection) and writes ``train.npz``, ``val.npz``, ``test.npz`` and
``summary.json`` (last) into ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ferflow.cli import seed
from ferflow.config import add_settings_argument, default
from ferflow.errors import FerflowError
from ferflow.fetch import resolve_source
from ferflow.storage import Split, save_stage

# ---------------------------------------------------------------------------------------------------
# checksums and archives


# ---------------------------------------------------------------------------------------------------
# sources


# ---------------------------------------------------------------------------------------------------
# the download stage


def check_classes(splits: dict[str, Split], source: str) -> None:
    """Refuse a split that lacks a class (an empty class folder or no rows of an emotion)."""
    for name, split in splits.items():
        empty = [c for c, n in split.counts().items() if n == 0]
        if empty:
            raise FerflowError(f"{source}: class {name}/{empty[0]} has no images (every class needs some)")


def split_validation(train: Split, val_fraction: float, seed: int) -> tuple[Split, Split]:
    """Carve a stratified, seeded validation split from train."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(train))
    try:
        keep, val = train_test_split(index, test_size=val_fraction, stratify=train.labels, random_state=seed)
    except ValueError as exc:
        raise FerflowError(
            f"cannot carve a stratified validation split of {val_fraction} from {len(train)} training images ({exc})"
        ) from None
    return train.subset(np.sort(keep)), train.subset(np.sort(val))


def acquire(args: argparse.Namespace) -> dict[str, Split]:
    """The source's train and test splits (strictly checked)."""
    settings = args.settings
    if args.source == "synthetic":
        from ferflow.synthetic import generate

        return generate(settings["synthetic"]["train"], settings["synthetic"]["test"], args.seed)
    from ferflow.sources import load_labelled

    local = resolve_source(args.source, settings["sha256"], args.cache_dir, extract_zip=False)
    data = load_labelled(
        local, settings["test_split"], strict=True, class_map=settings["classes"], label_mode=settings["label_mode"]
    )
    if "train" not in data or "test" not in data:
        found = ", ".join(sorted(data)) or "no split"
        raise FerflowError(f"{local}: expected train/<class>/ and test/<class>/ folders or an ICML CSV, found {found}")
    if len(data["test"]) == 0:
        raise FerflowError(f"{local}: no {settings['test_split']} images in the test split")
    if data["train"].classes != data["test"].classes:
        raise FerflowError(
            f"{local}: train has classes {', '.join(data['train'].classes)}, test {', '.join(data['test'].classes)}"
        )
    check_classes(data, str(local))
    return data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        required=True,
        help="kaggle:<owner>/<dataset> | http(s)://URL | local zip, tar.gz, folder or ICML CSV | synthetic",
    )
    parser.add_argument(
        "--seed", type=seed, default=default("seed"), help="seed of the validation split (and of source synthetic)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=Path("resources/downloads"), help="downloads and extracted archives"
    )
    parser.add_argument("--out", type=Path, required=True, help="stage folder: train/val/test.npz + summary.json")
    add_settings_argument(parser, "download")


def run(args: argparse.Namespace) -> int:
    data = acquire(args)
    train, val = split_validation(data["train"], args.settings["val_fraction"], args.seed)
    splits = {"train": train, "val": val, "test": data["test"]}
    save_stage(args.out, splits)
    width = max(map(len, train.classes))
    print(f"{'class':<{width}}  {'train':>6} {'val':>6} {'test':>6}")
    for name in train.classes:
        print(f"{name:<{width}}  " + " ".join(f"{splits[s].counts()[name]:>6}" for s in ("train", "val", "test")))
    print(f"{'total':<{width}}  " + " ".join(f"{len(splits[s]):>6}" for s in ("train", "val", "test")))
    print(f"wrote {args.out}/{{train,val,test}}.npz and summary.json")
    return 0
