"""``ferflow train``: train one experiment, resuming from ``last.pt`` when the job restarts.

Speed (:mod:`ferflow.train.engine`): both splits stay in memory as uint8 tensors on the training device;
each batch is indexed, normalised to [-1, 1] (``ferflow.faces.to_model_input``) and augmented as a whole with one
``grid_sample`` whose per-sample affine matrices combine the study's online augmentation
(horizontal flip, rotation, x-shear, translation; black fill). Mixed precision (``amp: auto``) on
CUDA and on CPUs with native bf16 (AVX-512 BF16, AMX); channels_last when configured.

Reproducibility: the model is initialised from ``seed``; each epoch's shuffling and augmentation
come from a generator seeded by ``(seed, epoch)``; dropout draws from the global torch RNG, whose
state is saved in ``last.pt`` with the model, optimizer, scheduler, history and best states. A run
killed after any epoch and restarted therefore ends exactly where an uninterrupted run ends (CPU).
``last.pt`` is resumed only when it holds an unfinished run (fewer epochs than planned, not early-stopped)
whose fingerprint (architecture, defining settings, seed, data, teacher) matches: a job run again over a finished
run (``--forcerun``, changed code) trains from scratch. The fingerprint also holds the precision the run computes
in (``amp: auto`` resolves to fp32, bf16 or fp16 by machine): a resume that would change it stops with one line
unless ``--allow-precision-change``.

Outputs (``--out``): ``history.csv`` (one row per epoch) and ``best.pt`` (the epoch with the best
val macro-F1), written when training ends; ``last.pt`` after every epoch.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import inspect
import io
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ferflow import checkpoint, config, models, tracking
from ferflow.cli import positive_int
from ferflow.device import PREFERENCES, claim_cuda_device, hardware, scheduler_assignment, select_device
from ferflow.errors import FerflowError
from ferflow.results import COLLAPSE_DEAD_UNITS
from ferflow.storage import file_digest, load_split, parse_json_object, split_digest, write_text
from ferflow.train import soft_labels
from ferflow.train.engine import (
    DeviceData,
    batches_per_epoch,
    epoch_generator,
    make_engine,
    val_metrics,
    view_side,
)
from ferflow.train.settings import RUNTIME_SWITCHES, SOFT_LABELS, defining_settings, distils_from, resolve_settings

DEFAULT_SEED: int = config.default("seeds")[0]
"""The seed of a run started by hand without ``--seed``: the config's first training seed by default."""
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
]
"""history.csv's columns before the per-class ones (:func:`history_columns`)."""


def history_columns(classes: tuple[str, ...]) -> list[str]:
    """history.csv's columns for a model of ``classes``: each epoch's scores, then each class's val scores."""
    return [*HISTORY_COLUMNS, *[f"val_{metric}_{name}" for name in classes for metric in ("precision", "recall", "f1")]]


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
    writer = csv.DictWriter(buffer, fieldnames=list(history[0]) if history else HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text(path, buffer.getvalue())


def load_teacher(path: Path, in_channels: int) -> nn.Module:
    """The distillation teacher's model, after checking that it scores ferflow's classes
    (:func:`ferflow.checkpoint.load_model`) and can take the student's images (the same channels, or 1 and 3)."""
    model, ckpt = checkpoint.load_model(path)
    channels = int(ckpt["arch_kwargs"].get("in_channels", 3))
    if channels != in_channels and {channels, in_channels} != {1, 3}:
        raise FerflowError(f"{path}: a teacher of {channels}-channel images for a {in_channels}-channel student")
    return model


def precision_name(amp_dtype: torch.dtype | None) -> str:
    """What a run computes in: ``bf16`` or ``fp16`` under autocast, else ``fp32``."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(amp_dtype, "fp32")


def resumable(saved: dict[str, Any], fingerprint: dict[str, Any], path: Path, allow_precision_change: bool) -> bool:
    """Whether ``path`` (its fingerprint ``saved``) holds this run, to be resumed. A run that would go on in
    another precision (``amp: auto`` on another kind of machine) is refused in one line, unless allowed."""
    if {**saved, "precision": None} != {**fingerprint, "precision": None}:
        return False
    if saved["precision"] != fingerprint["precision"] and not allow_precision_change:
        raise FerflowError(
            f"{path}: trained in {saved['precision']} so far, this machine would go on in {fingerprint['precision']}; "
            "resume anyway with --allow-precision-change, or delete it to train from scratch"
        )
    return True


def add_switch_arguments(parser: argparse.ArgumentParser) -> None:
    """``--compile`` and ``--channels-last`` (1 or 0), overriding the settings' (the DAG passes them apart)."""
    for key in RUNTIME_SWITCHES:
        flag = f"--{key.replace('_', '-')}"
        parser.add_argument(flag, type=int, choices=(0, 1), help=f"override the settings' {key} (1: on, 0: off)")


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
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help="seed of the weights, batches and augmentation, the schema's first seed (default: %(default)s)",
    )
    parser.add_argument(
        "--teacher", type=Path, help="knowledge distillation: the teacher's checkpoint (with the distillation setting)"
    )
    parser.add_argument(
        "--soft-labels",
        type=Path,
        help="knowledge distillation from a seed ensemble: its soft labels of the training images (ferflow "
        "soft-labels; with the distillation setting ensemble: true)",
    )
    parser.add_argument("--device", choices=PREFERENCES, help="override the settings' device")
    parser.add_argument("--threads", type=positive_int, help="override the settings' CPU threads")
    add_switch_arguments(parser)
    parser.add_argument(
        "--allow-precision-change",
        action="store_true",
        help="resume a last.pt trained in another precision (amp: auto on another kind of machine)",
    )
    tracking.add_arguments(parser)


def run(args: argparse.Namespace, on_epoch: Callable[[dict[str, float]], None] | None = None) -> int:
    """Train; ``on_epoch`` sees each epoch's history row once it is saved (the search prunes trials with it). On
    CUDA the run holds a GPU slot, released when the run ends however it ends (an exception, such as a pruned
    trial's, included): never left to the garbage collector, which would hold it as long as the exception lives."""
    settings = resolve_settings(parse_json_object(args.settings, "--settings"))
    settings.update({key: bool(value) for key in RUNTIME_SWITCHES if (value := getattr(args, key)) is not None})
    device_name = args.device or settings["device"]
    threads = args.threads or settings["threads"]
    torch.set_num_threads(threads)
    device = select_device(device_name)
    with contextlib.ExitStack() as held:
        if device.type == "cuda":
            device, slot, placement = claim_cuda_device()
            if slot is not None:
                held.callback(slot.release)
            print(placement, flush=True)
            torch.cuda.set_device(device)
            torch.backends.cudnn.benchmark = True
        elif assigned := scheduler_assignment():
            print(f"warning: {assigned}, but this run trains on {device} (device {device_name})", flush=True)
        return train_on(device, args, settings, threads, on_epoch)


def train_on(
    device: torch.device,
    args: argparse.Namespace,
    settings: dict[str, Any],
    threads: int,
    on_epoch: Callable[[dict[str, float]], None] | None,
) -> int:
    """Train as :func:`run` says, on ``device``."""
    options = parse_json_object(args.model_options, "--model-options")
    models.check_options(args.model, options, "--model-options key")  # and an unknown architecture: before the data
    train_split, val_split = load_split(args.data_dir / "train.npz"), load_split(args.data_dir / "val.npz")
    for name, split in (("train", train_split), ("val", val_split)):
        if len(split) == 0:
            raise FerflowError(f"{args.data_dir / (name + '.npz')}: no images")
    classes = train_split.classes
    if val_split.classes != classes:
        raise FerflowError(
            f"{args.data_dir / 'val.npz'}: classes {', '.join(val_split.classes)}, but train's are {', '.join(classes)}"
        )
    if train_split.soft is not None and args.soft_labels is not None:
        raise FerflowError(f"{args.data_dir / 'train.npz'}: holds soft targets (FER+ votes); distil without them")
    in_channels = 1 if train_split.images.ndim == 3 else train_split.images.shape[-1]
    arch_kwargs = {
        "in_channels": in_channels,
        "num_classes": len(classes),
        "dropout": settings["dropout"],
        **options,
    }
    if settings["crop"]:
        if "input_crop" not in inspect.signature(models.builder(args.model)).parameters:
            raise FerflowError(f"setting crop: architecture {args.model} cannot centre-crop its input (no input_crop)")
        if settings["crop"] >= train_split.images.shape[1]:
            raise FerflowError(
                f"setting crop: {settings['crop']} px is not smaller than the {train_split.images.shape[1]}-px images"
            )
        arch_kwargs["input_crop"] = settings["crop"]
    full_side = settings["crop"] or train_split.images.shape[1]
    low_side = (settings["low_res"] or {}).get("side", 0)
    if low_side >= full_side:
        raise FerflowError(f"setting low_res.side: {low_side} px is not smaller than the {full_side}-px training views")
    teacher = load_teacher(args.teacher, in_channels) if args.teacher else None
    if (args.soft_labels is not None) != (distils_from(settings) == SOFT_LABELS):
        raise FerflowError("setting distillation with ensemble: true and --soft-labels go together")
    soft = soft_labels.load(args.soft_labels, train_split) if args.soft_labels else None
    distilled_from = args.teacher or args.soft_labels  # the teacher's file: a resume needs the same one
    fingerprint = {
        "arch": args.model,
        "arch_kwargs": arch_kwargs,
        "seed": args.seed,
        "data": split_digest(train_split, val_split),
        "settings": defining_settings(settings),
        "teacher": file_digest(distilled_from) if distilled_from else None,
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
    fingerprint["precision"] = precision = precision_name(amp_dtype)  # amp: auto resolves by machine
    trained_on = hardware(device)
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
        elif resumable(state.get("fingerprint") or {}, fingerprint, last_path, args.allow_precision_change):
            model.load_state_dict(state["model"])
            engine.optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
            if engine.schedule is not None:
                engine.schedule.load_state_dict(state["schedule"])
            if engine.ema is not None:
                engine.ema.load_state_dict(state["ema"])
            if state["scaler"]:  # empty from a run without fp16 (CPU, bf16): the scaler of this device starts afresh
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
        f"threads {threads}, amp {amp_dtype} ({precision}), channels_last {channels_last}",
        flush=True,
    )
    print(f"settings {json.dumps(settings, sort_keys=True)}", flush=True)
    run_info = {
        "model": args.model,
        "experiment": args.experiment,
        "seed": args.seed,
        "settings_hash": tracking.settings_hash(fingerprint["settings"]),
    }
    trackers = tracking.open_run(args, out_dir, run_info, settings, start)
    if history:  # resumed: the epoch saved last, in case the job was killed between its save and its tracking
        trackers.epoch(history[-1])
    train_data = DeviceData.of(train_split, device, in_channels, soft)
    val_data = DeviceData.of(val_split, device, in_channels)
    patience = settings["early_stopping_patience"]

    for epoch in range(start, settings["epochs"] + 1):
        if stopping["stopped"]:
            break
        began = time.perf_counter()
        lr = engine.optimizer.param_groups[0]["lr"]
        train_loss, train_acc = engine.train_epoch(
            train_data, settings, epoch_generator(args.seed, epoch), progress_printer(epoch), view_side(settings, epoch)
        )
        engine.refresh_average_statistics(train_data)
        val_loss, predictions, dead = engine.predict(val_data)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            **val_metrics(val_split.labels, predictions, classes),
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
        history.append({k: row[k] for k in history_columns(classes)})
        checkpoint.save(
            last_path,
            checkpoint.make(
                model,
                args.model,
                arch_kwargs,
                classes,
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
                hardware=trained_on,
            ),
        )
        trackers.epoch(history[-1])  # after last.pt: a tracker's failure loses no epoch
        print(
            f"epoch {epoch}/{settings['epochs']}  train loss {train_loss:.4f} acc {train_acc:.4f}  "
            f"val loss {val_loss:.4f} "
            f"acc {row['val_acc']:.4f} macro-F1 {row['val_macro_f1']:.4f}  lr {lr:.3g}  {row['epoch_seconds']:.1f}s"
            + (f"  early stop: restored epoch {stopping['epoch']} (best val loss)" if stopping["stopped"] else ""),
            flush=True,
        )
        if on_epoch is not None:
            on_epoch(history[-1])
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
            classes,
            experiment=args.experiment,
            settings=settings,
            epoch=best["epoch"],
            val_macro_f1=best["val_macro_f1"],
            seed=args.seed,
            precision=precision,
            hardware=trained_on,
        ),
    )
    trackers.finish(history[best["epoch"] - 1], out_dir / "best.pt")
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
