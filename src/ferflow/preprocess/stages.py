"""Writing a data stage that changes only the training split (injection, balancing)."""

from __future__ import annotations

import os
from pathlib import Path

from ferflow.errors import FerflowError
from ferflow.storage import Split, copy_file, read_json, save_split, summary_of, write_json


def replace_train(src_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], train: Split) -> None:
    """Write ``out_dir`` as ``src_dir`` with a new training split: val and test copied byte for byte,
    summary.json (written last) with the new training counts and the source's val/test counts."""
    src, out = Path(src_dir), Path(out_dir)
    before = read_json(src / "summary.json")
    for name in ("val", "test"):
        if not (src / f"{name}.npz").is_file():
            raise FerflowError(f"{src / name}.npz: split file not found")
    save_split(out / "train.npz", train)
    for name in ("val", "test"):
        copy_file(src / f"{name}.npz", out / f"{name}.npz")
    write_json(out / "summary.json", {**summary_of({"train": train}), "val": before["val"], "test": before["test"]})
