"""``ferflow bench``: training images/s of ferflow's loop against a loop built the study's way.

The reference loop is what the study ran: ``torchvision.datasets.ImageFolder`` over the training
JPEGs, PIL transforms (RandomHorizontalFlip, RandomRotation(5), RandomAffine(0, shear=10,
translate=(.2, .2)), ToTensor, Normalize(.5, .5)) and a ``DataLoader`` with 2 workers, batch 64, fp32.
ferflow's loop is the trainer's: :class:`ferflow.train.engine.EpochBatches` feeding
:meth:`ferflow.train.engine.Engine.step` (what ``Engine.train_epoch`` runs), on the same images decoded once into
memory as 3 identical channels, with the schema's training defaults (Adam 1e-3, batch 64, the study's
augmentation drawn on the tensors, channels_last) and the training setting ``amp`` (``--amp``; ``auto``: bf16
autocast on a CPU that computes bf16 natively, where it is the largest single speed-up, and on a CUDA GPU that
does (compute capability 8.0+), fp16 on older GPUs, fp32 elsewhere, where emulated bf16 is slower). Both train the
same architecture from the same initialisation. The timed batches are split into rounds
that alternate between the loops, each after a few untimed warm-up batches (the reference restarts
its workers every round), so that a change in machine load hits both alike; the input pipelines are
also timed alone. This is a benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

import torch
import torch.nn.functional as F

from ferflow import models, sources
from ferflow.classes import canonical
from ferflow.cli import positive_int
from ferflow.config import default
from ferflow.device import PREFERENCES, cpu_has_native_bf16, select_device
from ferflow.errors import FerflowError
from ferflow.faces import IMAGE_SUFFIXES, to_rgb
from ferflow.train.engine import DeviceData, EpochBatches, epoch_generator, make_engine
from ferflow.train.settings import resolve_settings

REFERENCE_WORKERS = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="resnet", help=f"architecture ({', '.join(models.names())})")
    parser.add_argument(
        "--data", required=True, type=Path, help="class-folder layout with train/<class>/ (folder or zip)"
    )
    parser.add_argument("--batches", type=int, default=60, help="timed batches of 64 per loop")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds the batches are split into")
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches before each timing")
    parser.add_argument(
        "--threads", type=positive_int, default=default("train.threads"), help="torch threads of the training process"
    )
    parser.add_argument("--device", default="cpu", choices=PREFERENCES, help="device of both loops")
    parser.add_argument(
        "--amp",
        default="auto",
        choices=["auto", "true", "false"],
        help="ferflow loop's mixed precision, as the training setting amp",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the model weights and batches")


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
        members = [
            m
            for m in archive.namelist()
            if len(PurePosixPath(m).parts) >= 3
            and PurePosixPath(m).parts[-3] == "train"
            and PurePosixPath(m).suffix.lower() in IMAGE_SUFFIXES
        ]
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

    transform = transforms.Compose(
        [
            transforms.RandomHorizontalFlip(),
            transforms.RandomRotation(5),
            transforms.RandomAffine(0, shear=10, translate=(0.2, 0.2)),
            transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ]
    )
    dataset = datasets.ImageFolder(str(folder), transform=transform)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=64,
        shuffle=True,
        num_workers=REFERENCE_WORKERS,
        generator=torch.Generator().manual_seed(seed),
    )


def timed(
    batches: Iterable[tuple[torch.Tensor, ...]],
    step: Callable[[torch.Tensor, torch.Tensor], None],
    count: int,
    warmup: int,
    sync: Callable[[], None],
) -> float:
    """Images/s of ``step`` over ``count`` batches (``(x, targets, ...)``) after ``warmup`` untimed ones. ``sync``
    waits for the device before the clock starts and before it is read, never between batches: a GPU queues
    the batches' work as training does."""
    seen, began = 0, time.perf_counter()
    for i, (x, targets, *_) in enumerate(batches):
        if i == warmup:
            sync()
            seen, began = 0, time.perf_counter()
        step(x, targets)
        seen += len(x)
        if i + 1 == warmup + count:
            sync()
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


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    device = select_device(args.device)
    began = time.perf_counter()
    train = to_rgb(sources.load_labelled(args.data)["train"])
    load_seconds = time.perf_counter() - began
    per_round = -(-args.batches // args.rounds)
    if len(train) < (args.warmup + per_round) * 64:
        raise FerflowError(
            f"{args.data}: {len(train)} training images, too few for {args.warmup + per_round} batches of 64"
        )
    data = DeviceData.of(train, device, in_channels=3)
    print(
        f"{args.model}: {args.rounds} rounds of {per_round} timed batches of 64 per loop, "
        f"each after {args.warmup} warm-up batches; loops alternate so that both see the same machine load; "
        f"{args.threads} thread(s), device {device}"
    )
    print(
        f"ferflow decoded {len(train)} training images into memory once, in {load_seconds:.1f} s (not timed); "
        f"the reference loop decodes JPEGs in every batch"
    )
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    amp = {"true": True, "false": False}.get(args.amp, "auto")
    settings = resolve_settings({"max_train_batches": args.warmup + per_round, "amp": amp})
    torch.manual_seed(args.seed)
    engine, amp_dtype = make_engine(models.build(args.model, in_channels=3), settings, device)
    print(
        f"ferflow loop: {'autocast ' + str(amp_dtype).removeprefix('torch.') if amp_dtype else 'fp32'}, channels_last "
        f"{engine.channels_last}; reference loop: fp32. CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"native bf16 {'yes' if cpu_has_native_bf16() else 'no'}"
    )
    torch.manual_seed(args.seed)
    reference = reference_step(models.build(args.model, in_channels=3), device)

    rates: dict[str, list[float]] = {"ferflow": [], "reference": [], "ferflow input": [], "reference input": []}
    with tempfile.TemporaryDirectory(prefix="ferflow-bench-") as scratch:
        loader = reference_loader(train_folder(args.data, Path(scratch)), args.seed)
        for r in range(args.rounds):
            engine.model.train()
            rates["ferflow"].append(
                timed(
                    EpochBatches(data, settings, epoch_generator(args.seed, r), engine.channels_last),
                    lambda x, y: engine.step(x, y),
                    per_round,
                    args.warmup,
                    sync,
                )
            )
            rates["reference"].append(timed(loader, reference, per_round, args.warmup, sync))
            ours_rate, reference_rate = rates["ferflow"][-1], rates["reference"][-1]
            print(
                f"round {r + 1}: ferflow {ours_rate:.1f} images/s, reference {reference_rate:.1f} images/s, "
                f"ratio {ours_rate / reference_rate:.2f}x",
                flush=True,
            )
        rates["ferflow input"].append(
            timed(
                EpochBatches(data, settings, epoch_generator(args.seed, 0), engine.channels_last),
                lambda x, y: None,
                per_round,
                args.warmup,
                sync,
            )
        )
        rates["reference input"].append(timed(loader, lambda x, y: None, per_round, args.warmup, sync))
    mean = {
        name: len(values) / sum(1 / v for v in values) for name, values in rates.items()
    }  # total images / total time
    print(
        f"input only: ferflow {mean['ferflow input']:.0f} images/s, reference {mean['reference input']:.0f} images/s "
        f"({mean['ferflow input'] / mean['reference input']:.1f}x)"
    )
    print(f"training:   ferflow {mean['ferflow']:.1f} images/s, reference {mean['reference']:.1f} images/s")
    print(f"ratio: {mean['ferflow'] / mean['reference']:.2f}x (training images/s, ferflow / reference)")
    return 0
