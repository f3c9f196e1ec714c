"""The training engine: data held on the device, batched augmentation, optimizer, schedule, EMA, and one epoch
of training or validation (:class:`Engine`)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ferflow.classes import CLASS_NAMES
from ferflow.device import cpu_has_native_bf16, cuda_has_native_bf16
from ferflow.errors import FerflowError
from ferflow.faces import match_channels, to_model_input
from ferflow.inference import EVAL_BATCH, fuse_batchnorm
from ferflow.metrics import compute_metrics
from ferflow.storage import Split
from ferflow.train.losses import Criterion, balanced_class_weights, distillation_loss
from ferflow.train.mixing import apply_mix, draw_mix, erasing_mask, mix_targets
from ferflow.train.photometric import PhotometricDraw, apply_photometric, draw_photometric
from ferflow.train.settings import TEACHER, distils_from

EMA_BN_IMAGES = 4096  # training images whose statistics the EMA's batch norms are recomputed on each epoch


def compile_errors() -> tuple[type[Exception], ...]:
    """What ``torch.compile`` raises when it cannot compile (Dynamo, Inductor, no C++ compiler or Triton); not
    the errors of running a compiled model (CUDA out of memory, device asserts), which eager training would meet
    too. Looked up by name: torch 2.11 has ``TritonMissing`` where 2.14 has ``TritonUnavailableError``."""
    from torch._dynamo import exc as dynamo
    from torch._inductor import exc as inductor

    names = ("TritonUnavailableError", "TritonMissing", "CppCompileError", "InvalidCxxCompiler")
    found = (getattr(module, name) for module in (dynamo, inductor) for name in names if hasattr(module, name))
    return (dynamo.TorchDynamoException, *found)


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


def crop_matrices(n: int, side: int, crop: int, generator: torch.Generator) -> torch.Tensor:
    """``(n, 2, 3)`` maps from a ``crop`` × ``crop`` output to a window of a ``side`` × ``side`` image at a
    random whole-pixel offset (each of the ``side - crop + 1`` positions per axis equally likely)."""
    offsets = torch.randint(0, side - crop + 1, (n, 2), generator=generator).double()
    centre = (2 * offsets - (side - crop)) / side  # the window's centre in normalised coordinates (x, y)
    scale = torch.eye(2, dtype=torch.float64).expand(n, 2, 2) * (crop / side)
    return torch.cat([scale, centre.unsqueeze(-1)], dim=2).float()


def then_crop(theta: torch.Tensor | None, crop: torch.Tensor) -> torch.Tensor:
    """The map that takes a crop of the warped image: ``theta`` (output → input) after ``crop`` (crop → output)."""
    if theta is None:
        return crop
    return torch.cat([theta[:, :, :2] @ crop[:, :, :2], theta[:, :, :2] @ crop[:, :, 2:] + theta[:, :, 2:]], dim=2)


def augment(x: torch.Tensor, theta: torch.Tensor | None, size: int | None = None) -> torch.Tensor:
    """Warp a normalised batch (values in [-1, 1]) with per-sample ``theta`` into ``size`` × ``size`` outputs
    (default: the input's size); outside pixels are black. Without ``theta`` the batch is only resized (with
    antialiasing) to ``size``."""
    if theta is None:
        if size is None or size == x.shape[-1]:
            return x
        return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    shape = [*x.shape[:2], size, size] if size else list(x.shape)
    grid = F.affine_grid(theta.to(x.device), shape, align_corners=False)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


@dataclass
class DeviceData:
    """A split's images (uint8) and labels, held on the training device, with a seed ensemble's soft labels
    (class probabilities, :mod:`ferflow.train.soft_labels`) when a student distils from them, and the split's own
    soft targets (FER+'s vote distributions, :attr:`ferflow.storage.Split.soft`) when it has them: the loss's
    targets in place of the one-hot labels, or (``sample_targets``) a label drawn from them each epoch."""

    images: torch.Tensor
    labels: torch.Tensor
    in_channels: int
    soft: torch.Tensor | None = None
    num_classes: int = len(CLASS_NAMES)
    targets: torch.Tensor | None = None
    sample_targets: bool = False

    @staticmethod
    def of(split: Split, device: torch.device, in_channels: int, soft: np.ndarray | None = None) -> DeviceData:
        return DeviceData(
            torch.from_numpy(split.images).to(device),
            torch.from_numpy(split.labels).to(device),
            in_channels,
            torch.from_numpy(soft).to(device) if soft is not None else None,
            len(split.classes),
            torch.from_numpy(split.soft) if split.soft is not None else None,  # on the CPU: drawn from there
            split.sample_soft,
        )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def side(self) -> int:
        """The images' side in pixels."""
        return int(self.images.shape[1])

    def batch(self, index: torch.Tensor, channels_last: bool) -> torch.Tensor:
        x = to_model_input(self.images[index], self.in_channels)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``x`` on ``device``; to a GPU from pinned memory without blocking the host."""
    if device.type != "cuda":
        return x.to(device)
    return x.pin_memory().to(device, non_blocking=True)


class Ema(AveragedModel):
    """An exponential moving average of a model's weights and buffers (decay ``decay``) on ``device``, updated without
    reading anything back from the device: ``AveragedModel`` tests its update count (``n_averaged``) on the host at
    every step, a host-device sync on a GPU. The count is mirrored here in ``updates``; the state dict is
    ``AveragedModel``'s."""

    def __init__(self, model: nn.Module, decay: float, device: torch.device) -> None:
        super().__init__(model, device=device, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self.updates = 0

    def update_parameters(self, model: nn.Module) -> None:
        pairs = zip([*self.module.parameters(), *self.module.buffers()], [*model.parameters(), *model.buffers()])
        if self.updates == 0:
            for averaged, current in pairs:
                averaged.detach().copy_(current.detach())
        else:
            groups: dict[torch.dtype, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
            for averaged, current in pairs:
                group = groups.setdefault(averaged.dtype, ([], []))
                group[0].append(averaged.detach())
                group[1].append(current.detach())
            for averaged_group, current_group in groups.values():
                self.multi_avg_fn(averaged_group, current_group, self.n_averaged)
        self.n_averaged += 1
        self.updates += 1

    def load_state_dict(self, state: dict[str, Any], strict: bool = True, assign: bool = False) -> Any:
        result = super().load_state_dict(state, strict=strict, assign=assign)
        self.updates = int(self.n_averaged)  # once, at a resume
        return result


class EpochBatches:
    """The augmented ``(x, targets, y, soft)`` batches of one epoch (``targets``: one-hot, or mixed by mixup or
    cutmix; ``soft``: the images' soft labels mixed alike, None without them), in an order drawn from
    ``generator``; a final batch of one image is dropped (batch norm needs two). The views are ``side`` px
    (progressive resizing, :func:`view_side`), else the crop's side or the images'.

    Every random draw of the epoch (order, affine and crop maps, erasing masks, mixing partners) is made at once
    on the CPU, batch by batch in the same sequence as drawing them while training would, and moved to the
    training device in one transfer each: a GPU then trains without a host-device copy per batch."""

    def __init__(
        self,
        data: DeviceData,
        settings: dict[str, Any],
        generator: torch.Generator,
        channels_last: bool,
        side: int | None = None,
    ) -> None:
        size = settings["batch_size"]
        order = torch.randperm(len(data), generator=generator)
        if len(order) % size == 1 and len(order) > 1:
            order = order[:-1]
        chunks = list(order.split(size))[: settings["max_train_batches"] or None]
        self.data, self.channels_last, self.crop = data, channels_last, settings["crop"]
        side = side or self.crop or data.side
        self.side = side if side != data.side else None
        thetas, masks, self.mixes = [], [], []
        self.looks: list[PhotometricDraw | None] = []
        for chunk in chunks:
            n = len(chunk)
            theta = affine_matrices(n, settings["augmentation"], generator)
            if self.crop:
                theta = then_crop(theta, crop_matrices(n, data.side, self.crop, generator))
            thetas.append(theta)
            if settings["random_erasing"]:
                masks.append(erasing_mask(n, side, side, float(settings["random_erasing"]), generator))
            self.mixes.append(draw_mix(n, side, side, settings["mixup"], settings["cutmix"], generator))
            self.looks.append(draw_photometric(n, settings["photometric"], generator))
        device = data.labels.device
        self.looks = [look.to(device) if look is not None else None for look in self.looks]
        self.targets = None  # the split's own soft targets (or a label drawn from each), in batch order
        if data.targets is not None and chunks:
            rows = data.targets[torch.cat(chunks)]
            if data.sample_targets:
                rows = F.one_hot(torch.multinomial(rows, 1, generator=generator)[:, 0], data.num_classes).float()
            self.targets = to_device(rows, device)
        self.bounds = [0, *torch.tensor([len(c) for c in chunks], dtype=torch.int64).cumsum(0).tolist()]
        self.index = to_device(torch.cat(chunks) if chunks else order[:0], device)
        self.theta = to_device(torch.cat(thetas), device) if chunks and thetas[0] is not None else None
        self.masks = to_device(torch.cat(masks), device) if masks else None
        partners = [m.partner for m in self.mixes if m is not None]
        if partners:
            moved = to_device(torch.cat(partners), device).split([len(p) for p in partners])
            for draw, partner in zip((m for m in self.mixes if m is not None), moved):
                draw.partner = partner

    def __len__(self) -> int:
        return len(self.mixes)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        for b, draw in enumerate(self.mixes):
            lo, hi = self.bounds[b], self.bounds[b + 1]
            index = self.index[lo:hi]
            theta = self.theta[lo:hi] if self.theta is not None else None
            x = augment(self.data.batch(index, self.channels_last), theta, self.side)
            x = apply_photometric(x, self.looks[b])
            if self.masks is not None:
                x = x.masked_fill(self.masks[lo:hi, None], 0.0)
            y = self.data.labels[index]
            own = self.targets[lo:hi] if self.targets is not None else F.one_hot(y, self.data.num_classes).float()
            x, targets = apply_mix(x, own, draw)
            soft = mix_targets(self.data.soft[index], draw) if self.data.soft is not None else None
            yield x, targets, y, soft


@dataclass
class Engine:
    """A model with what one training step needs: optimizer, mixed precision, loss, and the optional
    per-batch learning-rate schedule, weight average (EMA) and distillation (from a teacher model's logits on
    each batch, or from the soft labels that come with the batch)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    channels_last: bool
    autocast: Callable[[], ContextManager[Any]]
    scaler: torch.amp.GradScaler
    criterion: Criterion = field(default_factory=Criterion)
    schedule: torch.optim.lr_scheduler.LRScheduler | None = None
    ema: Ema | None = None
    teacher: nn.Module | None = None
    distillation: dict[str, Any] | None = None
    teacher_channels: int = 0  # the teacher's input channels (a batch is matched to them)
    compiled: Callable[[torch.Tensor], torch.Tensor] | None = None  # torch.compile of the model (setting compile)
    warmed_up: bool = False  # whether compile_on ran
    num_classes: int = len(CLASS_NAMES)  # the model's outputs (a hard label's one-hot width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The training forward pass: the compiled model while there is one, else the eager model."""
        return (self.compiled or self.model)(x)

    def fall_back(self, exc: Exception) -> None:
        """Train eagerly from now on, after the compiler failed (one warning)."""
        print(f"warning: torch.compile failed, training eagerly: {str(exc).splitlines()[0]}", flush=True)
        self.compiled = None

    def compile_on(self, x: torch.Tensor, targets: torch.Tensor) -> None:
        """Compile the training forward and backward passes on a warm-up batch inside the guard (the backward is
        compiled at the first ``backward()``), then put back the weights, buffers, gradients and random state the
        warm-up changed, so that it changes no result. Only the compiler's errors fall back to eager training:
        a CUDA out-of-memory error or a device assert propagates as itself."""
        state = {k: v.clone() for k, v in self.model.state_dict().items()}
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            try:
                with self.autocast():
                    loss = self.criterion(self.compiled(x), targets)
                loss.backward()
            except compile_errors() as exc:
                self.fall_back(exc)
        self.model.load_state_dict(state)
        self.optimizer.zero_grad(set_to_none=True)
        self.warmed_up = True

    @property
    def evaluated(self) -> nn.Module:
        """The weights that are validated and saved: the EMA when there is one, else the model."""
        return self.ema.module if self.ema is not None else self.model

    def step(
        self, x: torch.Tensor, targets: torch.Tensor, soft: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step on a batch with hard labels or soft targets (and, distilling from an
        ensemble's soft labels, those of the batch); returns the (detached) loss and logits."""
        if targets.ndim == 1:
            targets = F.one_hot(targets, self.num_classes).float()
        if self.compiled is not None and not self.warmed_up:
            self.compile_on(x, targets)
        try:
            loss, logits = self.forward_backward(x, targets, soft)
        except compile_errors() as exc:  # a recompilation (a new batch shape) that fails: the batch again, eagerly
            if self.compiled is None:
                raise
            self.fall_back(exc)
            loss, logits = self.forward_backward(x, targets, soft)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        if self.schedule is not None:
            self.schedule.step()
        return loss.detach(), logits.detach()

    def forward_backward(
        self, x: torch.Tensor, targets: torch.Tensor, soft: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss of a batch and its logits, gradients computed (those of an earlier attempt cleared)."""
        with self.autocast():
            logits = self.forward(x)
            loss = self.criterion(logits, targets)
            if self.distillation is not None and (soft is not None or self.teacher is not None):
                if soft is not None:  # log-probabilities stand for the logits: softmax(log p / T) ∝ p^(1/T)
                    teacher_logits = soft.float().clamp_min(1e-12).log()
                else:
                    with torch.no_grad():
                        teacher_logits = self.teacher(match_channels(x, self.teacher_channels))
                weight = self.distillation["weight"]
                kd_term = distillation_loss(logits, teacher_logits, self.distillation["temperature"])
                loss = (1 - weight) * loss + weight * kd_term
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        return loss, logits

    def train_epoch(
        self,
        data: DeviceData,
        settings: dict[str, Any],
        generator: torch.Generator,
        progress: Callable[[int, int], None] | None = None,
        side: int | None = None,
    ) -> tuple[float, float]:
        """One pass over (at most ``max_train_batches`` batches of) ``data`` on views of ``side`` px (default:
        the crop's or the images'): (mean loss, accuracy; with mixup or cutmix, accuracy against each image's
        own label)."""
        self.model.train()
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        seen = 0
        batches = EpochBatches(data, settings, generator, self.channels_last, side)
        total = len(batches)
        for i, (x, targets, y, soft) in enumerate(batches, start=1):
            loss, logits = self.step(x, targets, soft)
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


def val_metrics(labels: np.ndarray, predictions: np.ndarray, classes: tuple[str, ...]) -> dict[str, float]:
    """Accuracy, macro-F1 (:func:`ferflow.metrics.compute_metrics`, the one definition) and per-class
    precision/recall/F1 of the validation split, whose classes are the model's."""
    metrics = compute_metrics(labels, predictions, classes)
    row = {"val_acc": metrics["accuracy"], "val_macro_f1": metrics["macro_f1"]}
    for name, scores in metrics["per_class"].items():
        row.update({f"val_{score}_{name}": scores[score] for score in ("precision", "recall", "f1")})
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
        weights = balanced_class_weights(train_labels, num_outputs(model)).to(device)  # once, not at every step
    criterion = Criterion(
        float(settings["label_smoothing"]),
        float(settings["focal_gamma"]) if settings["loss"] == "focal" else None,
        weights,
    )
    optimizer = make_optimizer(model, settings)
    ema = None
    if settings["ema"]:
        ema = Ema(model, float(settings["ema"]), device)
    if (teacher is not None) != (distils_from(settings) == TEACHER):
        raise FerflowError("setting distillation (without ensemble) and the teacher checkpoint (--teacher) go together")
    if teacher is not None:  # inference only: batch norm folded into the convolutions (16 % faster on CPU)
        teacher = fuse_batchnorm(teacher.to(device).eval())
        if channels_last:
            teacher = teacher.to(memory_format=torch.channels_last)
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
        torch.compile(model) if settings["compile"] else None,
        num_classes=num_outputs(model),
    ), amp_dtype


def num_outputs(model: nn.Module) -> int:
    """How many classes a classifier scores: the width of its last linear layer."""
    return next(m.out_features for m in reversed(list(model.modules())) if isinstance(m, nn.Linear))


def autocast_for(device: torch.device, amp: Any) -> tuple[Callable[[], ContextManager[Any]], torch.dtype | None]:
    """The autocast context of a run. ``auto``: on CUDA bf16 where the GPU computes it natively (compute
    capability 8.0 or later), else fp16 (with the GradScaler), and bf16 on a CPU that computes it natively,
    fp32 elsewhere (MPS, CPUs without bf16); ``true``: always (bf16 off CUDA); ``false``: never."""
    native_cpu_bf16 = device.type == "cpu" and cpu_has_native_bf16()
    if amp is False or (amp == "auto" and device.type != "cuda" and not native_cpu_bf16):
        return contextlib.nullcontext, None
    dtype = torch.float16 if device.type == "cuda" and not cuda_has_native_bf16() else torch.bfloat16
    return (lambda: torch.autocast(device.type, dtype=dtype)), dtype


def view_side(settings: dict[str, Any], epoch: int) -> int | None:
    """The side of the training views of (1-based) ``epoch`` under progressive resizing (setting ``low_res``):
    its ``side`` during the first ``fraction`` of the epochs, else None (full size)."""
    low = settings["low_res"]
    if low and epoch <= round(low["fraction"] * settings["epochs"]):
        return int(low["side"])
    return None


def batches_per_epoch(n: int, settings: dict[str, Any]) -> int:
    """How many batches ``EpochBatches`` yields for ``n`` images."""
    size = settings["batch_size"]
    count = math.ceil((n - 1 if n % size == 1 and n > 1 else n) / size)
    return min(count, settings["max_train_batches"] or count)
