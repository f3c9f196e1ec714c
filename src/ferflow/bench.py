"""``ferflow bench``: training images/s of ferflow's loop against a loop built the study's way.

The reference loop is what the study ran: ``torchvision.datasets.ImageFolder`` over the training
JPEGs, PIL transforms (RandomHorizontalFlip, RandomRotation(5), RandomAffine(0, shear=10,
translate=(.2, .2)), ToTensor, Normalize(.5, .5)) and a ``DataLoader`` with 2 workers, batch 64.
ferflow's loop is ``ferflow.train.Engine.train_epoch`` on the same images held in memory (3 identical
channels, as the model-input stage has them). Both train the same architecture from the same
initialisation with Adam; a few warm-up batches are excluded from each timing. This is a benchmark,
not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

import torch
import torch.nn.functional as F

from ferflow import layouts, models
from ferflow.classes import canonical
from ferflow.device import select_device
from ferflow.errors import FerflowError
from ferflow.rgb import to_rgb
from ferflow.train import DeviceData, EpochBatches, epoch_generator, make_engine, resolve_settings

REFERENCE_WORKERS = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="resnet", help=f"architecture ({', '.join(models.names())})")
    parser.add_argument("--data", required=True, type=Path, help="class-folder layout with train/<class>/ (folder or zip)")
    parser.add_argument("--batches", type=int, default=60, help="timed batches of 64 per loop (default 60)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed batches before each timing (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the training process (default 2)")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--seed", type=int, default=0)


def train_folder(data: Path, scratch: Path) -> Path:
    """The ``train/`` class folders of ``data``, extracted into ``scratch`` when ``data`` is a zip."""
    if data.is_dir():
        folder = next((p for p in [data / "train", *sorted(data.glob("*/train"))] if p.is_dir()), None)
        if folder is None:
            raise FerflowError(f"{data}: no train/<class>/ folders")
        return folder
    if not zipfile.is_zipfile(data):
        raise FerflowError(f"{data}: neither a folder nor a zip")
    with zipfile.ZipFile(data) as archive:
        members = [m for m in archive.namelist() if len(PurePosixPath(m).parts) >= 3
                   and PurePosixPath(m).parts[-3] == "train" and PurePosixPath(m).suffix.lower() in layouts.IMAGE_SUFFIXES]
        if not members:
            raise FerflowError(f"{data}: no train/<class>/<image> members")
        for m in members:  # flattened to train/<class>/<file>: no path from the archive escapes scratch
            parts = PurePosixPath(m).parts
            target = scratch / "train" / canonical(parts[-2]) / parts[-1]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(m))
    return scratch / "train"


def reference_loader(folder: Path, seed: int) -> torch.utils.data.DataLoader:
    """The study's input pipeline: ImageFolder + PIL transforms + DataLoader (2 workers, batch 64)."""
    from torchvision import datasets, transforms

    transform = transforms.Compose([
        transforms.RandomHorizontalFlip(),
        transforms.RandomRotation(5),
        transforms.RandomAffine(0, shear=10, translate=(0.2, 0.2)),
        transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ])
    dataset = datasets.ImageFolder(str(folder), transform=transform)
    return torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True, num_workers=REFERENCE_WORKERS,
                                       generator=torch.Generator().manual_seed(seed))


def timed(batches: Iterable[tuple[torch.Tensor, torch.Tensor]], step: Callable[[torch.Tensor, torch.Tensor], None],
          count: int, warmup: int) -> float:
    """Images/s of ``step`` over ``count`` batches after ``warmup`` untimed ones."""
    seen, began = 0, time.perf_counter()
    for i, (x, y) in enumerate(batches):
        if i == warmup:
            seen, began = 0, time.perf_counter()
        step(x, y)
        seen += len(y)
        if i + 1 == warmup + count:
            return seen / (time.perf_counter() - began)
    raise FerflowError(f"fewer than {warmup + count} batches of training images")


def reference_step(model: torch.nn.Module, device: torch.device) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """The study's training step (the running loss read back every batch)."""
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        loss.item()

    return step


def ferflow_rate(model: torch.nn.Module, data: DeviceData, device: torch.device, batches: int, warmup: int, seed: int) -> float:
    """Images/s of ferflow's training loop (``Engine.train_epoch``) on in-memory uint8 data."""
    settings = resolve_settings({"max_train_batches": warmup, "threads": torch.get_num_threads()})
    engine, _ = make_engine(model, settings, device)
    engine.train_epoch(data, settings, epoch_generator(seed, 0))
    settings["max_train_batches"] = batches
    if device.type == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    engine.train_epoch(data, settings, epoch_generator(seed, 1))  # returns floats: synchronised
    return min(batches * 64, len(data)) / (time.perf_counter() - began)


def ferflow_input_rate(data: DeviceData, batches: int, warmup: int, seed: int) -> float:
    """Images/s of ferflow's input pipeline alone (index, normalise, augment)."""
    settings = resolve_settings({"max_train_batches": warmup + batches})
    sync = torch.cuda.synchronize if data.labels.is_cuda else (lambda: None)
    return timed(EpochBatches(data, settings, epoch_generator(seed, 0), True), lambda x, y: sync(), batches, warmup)


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    device = select_device(args.device)
    began = time.perf_counter()
    train = to_rgb(layouts.load_labelled(args.data)["train"])
    load_seconds = time.perf_counter() - began
    if len(train) < (args.warmup + args.batches) * 64:
        raise FerflowError(f"{args.data}: {len(train)} training images, fewer than {(args.warmup + args.batches) * 64} needed")
    data = DeviceData.of(train, device, in_channels=3)
    print(f"{args.model}, {args.batches} timed batches of 64 after {args.warmup} warm-up, {args.threads} thread(s), device {device}")
    print(f"ferflow decoded {len(train)} training images into memory once, in {load_seconds:.1f} s (not timed below); "
          f"the reference loop decodes JPEGs in every batch")

    torch.manual_seed(args.seed)
    ours = ferflow_rate(models.build(args.model, in_channels=3), data, device, args.batches, args.warmup, args.seed)
    ours_input = ferflow_input_rate(data, args.batches, args.warmup, args.seed)
    with tempfile.TemporaryDirectory(prefix="ferflow-bench-") as scratch:
        loader = reference_loader(train_folder(args.data, Path(scratch)), args.seed)
        torch.manual_seed(args.seed)
        step = reference_step(models.build(args.model, in_channels=3), device)
        reference = timed(loader, step, args.batches, args.warmup)
        reference_input = timed(loader, lambda x, y: None, args.batches, args.warmup)
    print(f"training   ferflow loop {ours:9.1f} images/s   reference loop {reference:9.1f} images/s   ratio {ours / reference:.2f}x")
    print(f"input only ferflow      {ours_input:9.1f} images/s   reference      {reference_input:9.1f} images/s   "
          f"ratio {ours_input / reference_input:.2f}x")
    print(f"ratio: {ours / reference:.2f}x (training images/s, ferflow / reference)")
    return 0
