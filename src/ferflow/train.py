"""``ferflow train``: train one experiment, resuming from ``last.pt`` when the job restarts.

Speed: both splits stay in memory as uint8 tensors on the training device; each batch is indexed,
normalised to [-1, 1] (``preprocess.to_model_input``) and augmented as a whole with one
``grid_sample`` whose per-sample affine matrices combine the study's online augmentation
(horizontal flip, rotation, x-shear, translation; black fill). Mixed precision (``amp: auto``) on
CUDA and on CPUs with native bf16 (AVX-512 BF16, AMX); channels_last when configured.

Reproducibility: the model is initialised from ``seed``; each epoch's shuffling and augmentation
come from a generator seeded by ``(seed, epoch)``; dropout draws from the global torch RNG, whose
state is saved in ``last.pt`` with the model, optimizer, scheduler, history and best states. A run
killed after any epoch and restarted therefore ends exactly where an uninterrupted run ends (CPU).
``last.pt`` is resumed only when it holds an unfinished run (fewer epochs than planned, not early-stopped)
whose fingerprint (architecture, settings, seed, data) matches: a job run again over a finished run
(``--forcerun``, changed code) trains from scratch.

Outputs (``--out``): ``history.csv`` (one row per epoch) and ``best.pt`` (the epoch with the best
val macro-F1), written when training ends; ``last.pt`` after every epoch.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score, precision_recall_fscore_support
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ferflow import checkpoint, models
from ferflow.classes import CLASS_NAMES
from ferflow.device import claim_gpu_slot, cpu_has_native_bf16, select_device
from ferflow.errors import FerflowError
from ferflow.losses import Criterion, balanced_class_weights, distillation_loss
from ferflow.mixing import mix, random_erasing
from ferflow.preprocess import match_channels, to_model_input
from ferflow.results import COLLAPSE_DEAD_UNITS
from ferflow.storage import Split, load_split, parse_json_object, write_text

DEFAULTS: dict[str, Any] = {
    "epochs": 15,
    "batch_size": 64,
    "optimizer": "adam",
    "lr": 1.0e-3,
    "momentum": 0.9,
    "nesterov": False,
    "weight_decay": 0.0,
    "dropout": 0.0,
    "early_stopping_patience": None,
    "plateau": None,
    "schedule": "constant",
    "warmup_epochs": 0,
    "label_smoothing": 0.0,
    "loss": "ce",
    "focal_gamma": 2.0,
    "class_weights": None,
    "mixup": 0.0,
    "cutmix": 0.0,
    "random_erasing": 0.0,
    "ema": None,
    "distillation": None,
    "augmentation": {"horizontal_flip": True, "rotation": 5, "shear": 10, "translate": 0.2, "zoom": 0.0},
    "device": "auto",
    "channels_last": True,
    "amp": "auto",
    "threads": 2,
    "max_train_batches": None,
}
CHOICES: dict[str, tuple[Any, ...]] = {
    "optimizer": ("adam", "adamw", "sgd"),
    "schedule": ("constant", "cosine"),
    "loss": ("ce", "focal"),
    "class_weights": (None, "balanced"),
}
RUNTIME_KEYS = ("device", "threads")  # may change between a kill and the resume
EVAL_BATCH = 256
EMA_BN_IMAGES = 4096  # training images whose statistics the EMA's batch norms are recomputed on each epoch
HISTORY_COLUMNS = [
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_macro_f1",
    "lr",
    "epoch_seconds",
    "val_dead_units",
    *[f"val_{metric}_{name}" for name in CLASS_NAMES for metric in ("precision", "recall", "f1")],
]


def resolve_settings(given: dict[str, Any]) -> dict[str, Any]:
    """The training defaults overlaid by ``given``; unknown keys are refused."""
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise FerflowError(f"unknown training setting(s): {', '.join(unknown)}")
    settings = {**DEFAULTS, **given}
    augmentation = dict(given.get("augmentation") or {})
    unknown = sorted(set(augmentation) - set(DEFAULTS["augmentation"]))
    if unknown:
        raise FerflowError(f"unknown augmentation setting(s): {', '.join(unknown)}")
    settings["augmentation"] = {**DEFAULTS["augmentation"], **augmentation}
    for key, allowed in CHOICES.items():
        if settings[key] not in allowed:
            raise FerflowError(f"setting {key}: {settings[key]!r} is not one of {', '.join(map(str, allowed))}")
    if settings["schedule"] != "constant" and settings["plateau"]:
        raise FerflowError("settings schedule and plateau: choose one learning-rate schedule")
    distillation = settings["distillation"]
    if distillation is not None and set(distillation) != {"teacher", "temperature", "weight"}:
        raise FerflowError("setting distillation: needs exactly the keys teacher, temperature, weight")
    return settings


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator of one epoch's shuffling and augmentation, a function of (seed, epoch) only."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


def affine_matrices(n: int, augmentation: dict[str, Any], generator: torch.Generator) -> torch.Tensor | None:
    """Per-sample ``(n, 2, 3)`` inverse affine maps in normalised coordinates (``affine_grid``'s theta):
    flip, then rotation by U(±rotation)°, x-shear by U(±shear)°, scaling by U(1 ± zoom) (a random crop
    and resize), translation by U(±translate) of the size."""
    flip_on, rotation = augmentation["horizontal_flip"], float(augmentation["rotation"])
    shear, translate = float(augmentation["shear"]), float(augmentation["translate"])
    zoom = float(augmentation.get("zoom", 0.0))
    if not (flip_on or rotation or shear or translate or zoom):
        return None
    u = torch.rand(n, 5, generator=generator, dtype=torch.float64) * 2 - 1
    flip = torch.where(u[:, 0] < 0, -1.0, 1.0) if flip_on else torch.ones(n, dtype=torch.float64)
    angle, skew = torch.deg2rad(u[:, 1] * rotation), torch.tan(torch.deg2rad(u[:, 2] * shear))
    cos, sin = torch.cos(angle), torch.sin(angle)
    # forward map A = Shear · Rotation · Flip, then + t (t in normalised units: 2 × fraction)
    a = torch.stack(
        [
            torch.stack([(cos + skew * sin) * flip, -sin + skew * cos], dim=1),
            torch.stack([sin * flip, cos], dim=1),
        ],
        dim=1,
    )
    if zoom:  # a random crop of scale s: the content is magnified by s ∈ [1 - zoom, 1 + zoom]
        a = a * (1 + zoom * (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1))[:, None, None]
    t = torch.stack([u[:, 3], u[:, 4]], dim=1) * (2 * translate)
    inverse = torch.linalg.inv(a)
    return torch.cat([inverse, -(inverse @ t.unsqueeze(-1))], dim=2).float()


def augment(x: torch.Tensor, theta: torch.Tensor | None) -> torch.Tensor:
    """Warp a normalised batch (values in [-1, 1]) with per-sample ``theta``; outside pixels are black."""
    if theta is None:
        return x
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


@dataclass
class DeviceData:
    """A split's images (uint8) and labels, held on the training device."""

    images: torch.Tensor
    labels: torch.Tensor
    in_channels: int

    @staticmethod
    def of(split: Split, device: torch.device, in_channels: int) -> DeviceData:
        return DeviceData(
            torch.from_numpy(split.images).to(device), torch.from_numpy(split.labels).to(device), in_channels
        )

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, index: torch.Tensor, channels_last: bool) -> torch.Tensor:
        x = to_model_input(self.images[index], self.in_channels)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x


class EpochBatches:
    """The augmented ``(x, y)`` batches of one epoch, in an order drawn from ``generator``; a final
    batch of one image is dropped (batch norm needs two)."""

    def __init__(
        self, data: DeviceData, settings: dict[str, Any], generator: torch.Generator, channels_last: bool
    ) -> None:
        size = settings["batch_size"]
        order = torch.randperm(len(data), generator=generator)
        if len(order) % size == 1 and len(order) > 1:
            order = order[:-1]
        self.chunks = list(order.split(size))[: settings["max_train_batches"] or None]
        self.data, self.augmentation, self.generator, self.channels_last = (
            data,
            settings["augmentation"],
            generator,
            channels_last,
        )
        self.erasing = float(settings["random_erasing"])

    def __len__(self) -> int:
        return len(self.chunks)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for chunk in self.chunks:
            theta = affine_matrices(len(chunk), self.augmentation, self.generator)
            index = chunk.to(self.data.labels.device)
            x = augment(self.data.batch(index, self.channels_last), theta)
            if self.erasing:
                x = random_erasing(x, self.erasing, self.generator)
            yield x, self.data.labels[index]


@dataclass
class Engine:
    """A model with what one training step needs: optimizer, mixed precision, loss, and the optional
    per-batch learning-rate schedule, weight average (EMA) and distillation teacher."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    channels_last: bool
    autocast: Callable[[], ContextManager[Any]]
    scaler: torch.amp.GradScaler
    criterion: Criterion = field(default_factory=Criterion)
    schedule: torch.optim.lr_scheduler.LRScheduler | None = None
    ema: AveragedModel | None = None
    teacher: nn.Module | None = None
    distillation: dict[str, Any] | None = None
    teacher_channels: int = 0  # the teacher's input channels (a batch is matched to them)

    @property
    def evaluated(self) -> nn.Module:
        """The weights that are validated and saved: the EMA when there is one, else the model."""
        return self.ema.module if self.ema is not None else self.model

    def step(self, x: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step on a batch with hard labels or soft targets; returns the (detached)
        loss and logits."""
        if targets.ndim == 1:
            targets = F.one_hot(targets, len(CLASS_NAMES)).float()
        with self.autocast():
            logits = self.model(x)
            loss = self.criterion(logits, targets)
            if self.teacher is not None and self.distillation is not None:
                with torch.no_grad():
                    teacher_logits = self.teacher(match_channels(x, self.teacher_channels))
                weight = self.distillation["weight"]
                soft = distillation_loss(logits, teacher_logits, self.distillation["temperature"])
                loss = (1 - weight) * loss + weight * soft
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        if self.schedule is not None:
            self.schedule.step()
        return loss.detach(), logits.detach()

    def train_epoch(
        self,
        data: DeviceData,
        settings: dict[str, Any],
        generator: torch.Generator,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[float, float]:
        """One pass over (at most ``max_train_batches`` batches of) ``data``: (mean loss, accuracy; with
        mixup or cutmix, accuracy against each image's own label)."""
        self.model.train()
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        seen = 0
        batches = EpochBatches(data, settings, generator, self.channels_last)
        total = len(batches)
        for i, (x, y) in enumerate(batches, start=1):
            x, targets = mix(
                x, F.one_hot(y, len(CLASS_NAMES)).float(), settings["mixup"], settings["cutmix"], generator
            )
            loss, logits = self.step(x, targets)
            loss_sum += loss.double() * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            if progress:
                progress(i, total)
        return float(loss_sum) / seen, int(correct) / seen

    @torch.no_grad()
    def refresh_average_statistics(self, data: DeviceData, images: int = EMA_BN_IMAGES) -> None:
        """Recompute the EMA's batch-norm statistics on a fixed subset of (unaugmented) training images.
        Averaged running statistics do not fit averaged weights: on FER2013 an EMA (decay .998) validated
        at 18 % accuracy with them and at 47 % with recomputed ones."""
        if self.ema is None:
            return
        model = self.ema.module
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in norms]
        model.eval()
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches below
            m.train()
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:images]
        for chunk in order.split(EVAL_BATCH):
            with self.autocast():
                model(data.batch(chunk.to(self.device), self.channels_last))
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.eval()

    @torch.no_grad()
    def predict(self, data: DeviceData) -> tuple[float, np.ndarray, float]:
        """(mean cross-entropy, predicted labels, fraction of dead embedding units) over ``data``, in
        eval mode. A unit is dead when it is zero for every image: the embeddings end in a ReLU, and a
        run whose units nearly all die (the study's ResNet under Adam 1e-3, see the README) stops learning."""
        model = self.evaluated
        model.eval()
        loss_sum, predictions, alive = 0.0, [], None
        for start in range(0, len(data), EVAL_BATCH):
            index = torch.arange(start, min(start + EVAL_BATCH, len(data)), device=self.device)
            with self.autocast():
                features = model.features(data.batch(index, self.channels_last))
                logits = model.classifier(features).float()
            active = (features > 0).any(dim=0)
            alive = active if alive is None else alive | active
            loss_sum += float(F.cross_entropy(logits, data.labels[index], reduction="sum"))
            predictions.append(logits.argmax(1).cpu())
        assert alive is not None
        return loss_sum / len(data), torch.cat(predictions).numpy(), 1.0 - float(alive.float().mean())


def val_metrics(labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 over the seven classes and per-class precision/recall/F1."""
    classes = list(range(len(CLASS_NAMES)))
    precision, recall, f1, _ = precision_recall_fscore_support(labels, predictions, labels=classes, zero_division=0)
    row = {
        "val_acc": float(np.mean(labels == predictions)),
        "val_macro_f1": float(f1_score(labels, predictions, labels=classes, average="macro", zero_division=0)),
    }
    for i, name in enumerate(CLASS_NAMES):
        row.update(
            {
                f"val_precision_{name}": float(precision[i]),
                f"val_recall_{name}": float(recall[i]),
                f"val_f1_{name}": float(f1[i]),
            }
        )
    return row


def make_optimizer(model: nn.Module, settings: dict[str, Any]) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    lr, decay = settings["lr"], settings["weight_decay"]
    if settings["optimizer"] == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=settings["momentum"], weight_decay=decay, nesterov=bool(settings["nesterov"])
        )
    if settings["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=decay)


def lr_factor(step: int, warmup: int, total: int, cosine: bool) -> float:
    """The learning-rate multiplier after ``step`` optimiser steps: linear warmup over ``warmup`` steps,
    then constant or a cosine decay to zero at ``total`` steps."""
    if step < warmup:
        return (step + 1) / warmup
    if not cosine:
        return 1.0
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return 0.5 * (1 + math.cos(math.pi * progress))


def make_schedule(
    optimizer: torch.optim.Optimizer, settings: dict[str, Any], steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR | None:
    """The per-batch warmup / cosine schedule of ``settings`` (None when the lr is constant)."""
    warmup = round(settings["warmup_epochs"] * steps_per_epoch)
    cosine = settings["schedule"] == "cosine"
    if not (warmup or cosine):
        return None
    total = settings["epochs"] * steps_per_epoch
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, warmup, total, cosine))


def make_engine(
    model: nn.Module,
    settings: dict[str, Any],
    device: torch.device,
    steps_per_epoch: int = 1,
    train_labels: np.ndarray | None = None,
    teacher: nn.Module | None = None,
) -> tuple[Engine, torch.dtype | None]:
    """The model on ``device`` (channels_last when configured) with its optimizer, mixed precision, loss,
    schedule, EMA and teacher as ``settings`` ask (``train_labels`` give the balanced class weights)."""
    channels_last = bool(settings["channels_last"])
    model = model.to(device, memory_format=torch.channels_last) if channels_last else model.to(device)
    autocast, amp_dtype = autocast_for(device, settings["amp"])
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    weights = None
    if settings["class_weights"] == "balanced":
        if train_labels is None:
            raise FerflowError("setting class_weights: balanced needs the training labels")
        weights = balanced_class_weights(train_labels, len(CLASS_NAMES))
    criterion = Criterion(
        float(settings["label_smoothing"]),
        float(settings["focal_gamma"]) if settings["loss"] == "focal" else None,
        weights,
    )
    optimizer = make_optimizer(model, settings)
    ema = None
    if settings["ema"]:
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(float(settings["ema"])), use_buffers=True)
    if (teacher is None) != (settings["distillation"] is None):
        raise FerflowError("setting distillation and the teacher checkpoint (--teacher) go together")
    if teacher is not None:
        teacher = teacher.to(device).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
    return Engine(
        model,
        optimizer,
        device,
        channels_last,
        autocast,
        scaler,
        criterion,
        make_schedule(optimizer, settings, steps_per_epoch),
        ema,
        teacher,
        settings["distillation"],
        next(m.in_channels for m in teacher.modules() if isinstance(m, nn.Conv2d)) if teacher is not None else 0,
    ), amp_dtype


def autocast_for(device: torch.device, amp: Any) -> tuple[Callable[[], ContextManager[Any]], torch.dtype | None]:
    """The autocast context of a run. ``auto``: bf16 on CUDA (fp16 where bf16 is unsupported) and on a
    CPU that computes bf16 natively, fp32 elsewhere (MPS, CPUs without bf16); ``true``: always (bf16
    off CUDA); ``false``: never."""
    native_cpu_bf16 = device.type == "cpu" and cpu_has_native_bf16()
    if amp is False or (amp == "auto" and device.type != "cuda" and not native_cpu_bf16):
        return contextlib.nullcontext, None
    dtype = torch.float16 if device.type == "cuda" and not torch.cuda.is_bf16_supported() else torch.bfloat16
    return (lambda: torch.autocast(device.type, dtype=dtype)), dtype


def batches_per_epoch(n: int, settings: dict[str, Any]) -> int:
    """How many batches ``EpochBatches`` yields for ``n`` images."""
    size = settings["batch_size"]
    count = math.ceil((n - 1 if n % size == 1 and n > 1 else n) / size)
    return min(count, settings["max_train_batches"] or count)


def file_digest(path: Path) -> str:
    """A digest of a file's bytes (the teacher checkpoint of a distilled run)."""
    return hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()


def data_digest(*splits: Split) -> str:
    """A digest of the training data (images and labels), so a resume never mixes datasets."""
    digest = hashlib.blake2b(digest_size=16)
    for split in splits:
        digest.update(split.images.tobytes())
        digest.update(split.labels.tobytes())
    return digest.hexdigest()


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text(path, buffer.getvalue())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help=f"architecture ({', '.join(models.names())})")
    parser.add_argument("--experiment", required=True, help="experiment name (recorded in best.pt)")
    parser.add_argument(
        "--data-dir", required=True, type=Path, help="data stage directory holding train.npz and val.npz"
    )
    parser.add_argument("--out", required=True, type=Path, help="run directory: history.csv, best.pt, last.pt")
    parser.add_argument("--settings", default="{}", help="training settings as a JSON object (defaults filled in)")
    parser.add_argument(
        "--model-options", default="{}", help='architecture options as a JSON object, e.g. {"pretrained": true}'
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the weights, batches and augmentation")
    parser.add_argument(
        "--teacher", type=Path, help="knowledge distillation: the teacher's checkpoint (with the distillation setting)"
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], help="override the settings' device")
    parser.add_argument("--threads", type=int, help="override the settings' CPU threads")


def run(args: argparse.Namespace) -> int:
    settings = resolve_settings(parse_json_object(args.settings, "--settings"))
    options = parse_json_object(args.model_options, "--model-options")
    device_name = args.device or settings["device"]
    threads = args.threads or settings["threads"]
    torch.set_num_threads(threads)
    device = select_device(device_name)
    if device.type == "cuda":
        slot = claim_gpu_slot(torch.cuda.device_count())
        device = torch.device("cuda", slot.index)
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    models.builder(args.model)  # unknown architecture: fail before reading the data
    train_split, val_split = load_split(args.data_dir / "train.npz"), load_split(args.data_dir / "val.npz")
    for name, split in (("train", train_split), ("val", val_split)):
        if len(split) == 0:
            raise FerflowError(f"{args.data_dir / (name + '.npz')}: no images")
        if split.labels.min() < 0 or split.labels.max() >= len(CLASS_NAMES):
            raise FerflowError(f"{args.data_dir / (name + '.npz')}: labels outside 0..{len(CLASS_NAMES) - 1}")
    in_channels = 1 if train_split.images.ndim == 3 else train_split.images.shape[-1]
    arch_kwargs = {
        "in_channels": in_channels,
        "num_classes": len(CLASS_NAMES),
        "dropout": settings["dropout"],
        **options,
    }
    teacher = checkpoint.load_model(args.teacher)[0] if args.teacher else None
    fingerprint = {
        "arch": args.model,
        "arch_kwargs": arch_kwargs,
        "seed": args.seed,
        "data": data_digest(train_split, val_split),
        "settings": {k: v for k, v in settings.items() if k not in RUNTIME_KEYS},
        "teacher": file_digest(args.teacher) if args.teacher else None,
    }

    torch.manual_seed(args.seed)
    engine, amp_dtype = make_engine(
        models.build(args.model, **arch_kwargs),
        settings,
        device,
        batches_per_epoch(len(train_split), settings),
        train_split.labels,
        teacher,
    )
    model, channels_last = engine.model, engine.channels_last
    plateau = settings["plateau"]
    scheduler = (
        torch.optim.lr_scheduler.ReduceLROnPlateau(
            engine.optimizer, mode="min", factor=plateau["factor"], patience=plateau["patience"]
        )
        if plateau
        else None
    )
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".*.tmp"):  # partial writes of a killed run
        stale.unlink()
    last_path = out_dir / "last.pt"

    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"epoch": 0, "val_macro_f1": -1.0, "model": cpu_state(engine.evaluated)}
    stopping: dict[str, Any] = {"val_loss": math.inf, "epoch": 0, "bad_epochs": 0, "model": None, "stopped": False}
    start = 1
    if last_path.exists():
        state = checkpoint.read(last_path)
        done = state.get("epoch", 0)
        if done >= settings["epochs"] or state.get("early_stopping", {}).get("stopped"):  # a rerun retrains
            print(f"ignoring {last_path}: it holds a finished run (epoch {done}); training from scratch", flush=True)
        elif state.get("fingerprint") == fingerprint:
            model.load_state_dict(state["model"])
            engine.optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
            if engine.schedule is not None:
                engine.schedule.load_state_dict(state["schedule"])
            if engine.ema is not None:
                engine.ema.load_state_dict(state["ema"])
            engine.scaler.load_state_dict(state["scaler"])
            set_rng_state(state["rng"])
            history, best, stopping = state["history"], state["best"], state["early_stopping"]
            start = state["epoch"] + 1
            print(f"resuming from {last_path} after epoch {state['epoch']}", flush=True)
        else:
            print(f"ignoring {last_path}: it belongs to other settings, data or seed; starting afresh", flush=True)

    n_params = models.count_parameters(model)
    n_trainable = models.count_parameters(model, trainable_only=True)
    print(
        f"{args.model}/{args.experiment}: {n_params:,} parameters ({n_trainable:,} trainable), options {options}, "
        f"{len(train_split)} train / {len(val_split)} val images ({in_channels} channel(s)), device {device}, "
        f"threads {threads}, amp {amp_dtype}, channels_last {channels_last}",
        flush=True,
    )
    print(f"settings {json.dumps(settings, sort_keys=True)}", flush=True)
    train_data = DeviceData.of(train_split, device, in_channels)
    val_data = DeviceData.of(val_split, device, in_channels)
    patience = settings["early_stopping_patience"]

    for epoch in range(start, settings["epochs"] + 1):
        if stopping["stopped"]:
            break
        began = time.perf_counter()
        lr = engine.optimizer.param_groups[0]["lr"]
        train_loss, train_acc = engine.train_epoch(
            train_data, settings, epoch_generator(args.seed, epoch), progress_printer(epoch)
        )
        engine.refresh_average_statistics(train_data)
        val_loss, predictions, dead = engine.predict(val_data)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            **val_metrics(val_split.labels, predictions),
            "lr": lr,
            "val_dead_units": dead,
        }
        if scheduler is not None:
            scheduler.step(val_loss)
        if row["val_macro_f1"] > best["val_macro_f1"]:
            best = {"epoch": epoch, "val_macro_f1": row["val_macro_f1"], "model": cpu_state(engine.evaluated)}
        if patience is not None:
            if val_loss < stopping["val_loss"]:
                stopping.update(val_loss=val_loss, epoch=epoch, bad_epochs=0, model=cpu_state(engine.evaluated))
            else:
                stopping["bad_epochs"] += 1
            if stopping["bad_epochs"] >= patience:
                stopping["stopped"] = True
                engine.evaluated.load_state_dict(stopping["model"])  # restore the weights of the best val loss
        row["epoch_seconds"] = time.perf_counter() - began
        history.append({k: row[k] for k in HISTORY_COLUMNS})
        checkpoint.save(
            last_path,
            checkpoint.make(
                model,
                args.model,
                arch_kwargs,
                experiment=args.experiment,
                settings=settings,
                epoch=epoch,
                optimizer=engine.optimizer.state_dict(),
                scheduler=scheduler.state_dict() if scheduler else None,
                schedule=engine.schedule.state_dict() if engine.schedule else None,
                ema=engine.ema.state_dict() if engine.ema else None,
                scaler=engine.scaler.state_dict(),
                rng=rng_state(),
                history=history,
                best=best,
                early_stopping=stopping,
                fingerprint=fingerprint,
            ),
        )
        print(
            f"epoch {epoch}/{settings['epochs']}  train loss {train_loss:.4f} acc {train_acc:.4f}  "
            f"val loss {val_loss:.4f} "
            f"acc {row['val_acc']:.4f} macro-F1 {row['val_macro_f1']:.4f}  lr {lr:.3g}  {row['epoch_seconds']:.1f}s"
            + (f"  early stop: restored epoch {stopping['epoch']} (best val loss)" if stopping["stopped"] else ""),
            flush=True,
        )
        if dead >= COLLAPSE_DEAD_UNITS:
            print(
                f"warning: {dead:.0%} of the embedding units are dead (zero on every val image); the run is "
                f"probably collapsing (dying ReLUs): try a lower lr or SGD, see the README's known problems",
                flush=True,
            )

    model.load_state_dict(best["model"])
    write_history(out_dir / "history.csv", history)
    checkpoint.save(
        out_dir / "best.pt",
        checkpoint.make(
            model,
            args.model,
            arch_kwargs,
            experiment=args.experiment,
            settings=settings,
            epoch=best["epoch"],
            val_macro_f1=best["val_macro_f1"],
            seed=args.seed,
        ),
    )
    print(f"best epoch {best['epoch']}: val macro-F1 {best['val_macro_f1']:.4f} -> {out_dir / 'best.pt'}", flush=True)
    return 0


def progress_printer(epoch: int) -> Callable[[int, int], None]:
    """Prints about ten progress lines per epoch when an epoch has many batches."""
    began = time.perf_counter()

    def report(done: int, total: int) -> None:
        step = max(total // 10, 1)
        if total >= 50 and done % step == 0 and done < total:
            rate = done / (time.perf_counter() - began)
            print(f"  epoch {epoch}: batch {done}/{total} ({rate:.1f} batches/s)", file=sys.stdout, flush=True)

    return report
