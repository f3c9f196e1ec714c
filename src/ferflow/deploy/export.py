"""Export a checkpoint to ONNX (dynamic batch axis) and check it against PyTorch with ONNX Runtime.

Batch normalisation is folded into the preceding convolutions first (:func:`fuse_batchnorm`, torch.fx
pattern fusion in eval mode), so the graph holds no ``BatchNormalization`` node whichever exporter ran;
``onnx_check.json`` records the count (``batchnorm_nodes``, 0 expected) read from the exported graph.
The exporter is ``torch.onnx.export(dynamo=True)`` (torch.export + onnxscript, the default and
maintained path since torch 2.9); should it fail for an architecture, the legacy TorchScript
exporter (``dynamo=False`` with ``dynamic_axes``) is used instead, and ``onnx_check.json`` says which.
The graph has one input ``input`` (``(batch, in_channels, 48, 48)`` float, normalised like training)
and one output ``logits`` (``(batch, 7)``); the checkpoint's classes, image size, channels and
normalisation are stored as ONNX metadata.

The check runs the whole split through the unfused PyTorch model (eval, float32) and ONNX Runtime (CPU) in batches of
``--batch-size`` plus one single-image batch (exercising the dynamic axis), reports the largest
absolute difference of logits and of softmax probabilities, and fails, writing nothing, when any
prediction differs or the logits differ by more than ``--atol``.
"""

from __future__ import annotations

import argparse
import io
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from ferflow import checkpoint, tracking
from ferflow.cli import number, positive_int
from ferflow.config import add_settings_argument
from ferflow.errors import FerflowError
from ferflow.faces import to_model_input
from ferflow.inference import EVAL_BATCH, fuse_batchnorm
from ferflow.ort import INPUT, OUTPUT, example_input, logits_of, metadata, ort_session, softmax
from ferflow.storage import atomic_path, check_outputs, load_split, write_json


def count_ops(proto: onnx.ModelProto, op_type: str) -> int:
    """How many nodes of ``op_type`` the model's main graph holds."""
    return sum(node.op_type == op_type for node in proto.graph.node)


def to_onnx(model: nn.Module, example: torch.Tensor, opset: int) -> tuple[onnx.ModelProto, str]:
    """``model`` as an ONNX model with a dynamic batch axis, and the exporter that produced it."""
    try:
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            opset_version=opset,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
        return program.model_proto, "dynamo"
    except Exception as exc:  # any exporter failure: fall back to the TorchScript exporter
        print(
            f"ferflow export-onnx: dynamo exporter failed "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "using the TorchScript exporter",
            file=sys.stderr,
        )
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (example,),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
        )
    return onnx.load_from_string(buffer.getvalue()), "torchscript"


def compare(model: nn.Module, session: ort.InferenceSession, x: torch.Tensor, batch_size: int) -> dict[str, Any]:
    """PyTorch versus ONNX Runtime on ``x``: differences and prediction agreement (plus a batch-1 run)."""
    with torch.inference_mode():
        reference = logits_of(lambda b: model(b).numpy(), x, batch_size)
    onnx_logits = logits_of(lambda b: session.run([OUTPUT], {INPUT: b.numpy()})[0], x, batch_size)
    single = np.asarray(session.run([OUTPUT], {INPUT: x[:1].numpy()})[0], dtype=np.float64)
    for engine, logits in (("PyTorch", reference), ("ONNX Runtime", onnx_logits), ("ONNX Runtime", single)):
        if not np.isfinite(logits).all():
            raise FerflowError(f"{engine} gives non-finite logits (NaN or infinity): nothing to compare")
    logit_diff = max(float(np.abs(reference - onnx_logits).max()), float(np.abs(reference[:1] - single).max()))
    mismatches = int((reference.argmax(1) != onnx_logits.argmax(1)).sum()) + int(
        reference[0].argmax() != single[0].argmax()
    )
    return {
        "max_abs_diff": logit_diff,
        "max_abs_diff_probabilities": float(np.abs(softmax(reference) - softmax(onnx_logits)).max()),
        "predictions_match": mismatches == 0,
        "n_mismatches": mismatches,
        "n_images": len(x),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a ferflow checkpoint (best.pt)")
    parser.add_argument("--data", required=True, help="split file (.npz) to check the export on, e.g. the test split")
    parser.add_argument("--out", required=True, help="the ONNX model to write")
    parser.add_argument("--check-out", required=True, help="the JSON check report to write")
    parser.add_argument("--batch-size", type=positive_int, default=EVAL_BATCH, help="batch size of the check")
    parser.add_argument("--atol", type=number(0), default=1e-3, help="largest allowed absolute logit difference")
    add_settings_argument(parser, "export-onnx")
    tracking.add_arguments(parser, tensorboard=False)


def run(args: argparse.Namespace) -> int:
    check_outputs([args.out, args.check_out], [args.checkpoint, args.data])
    opset = args.settings["opset"]
    if opset > onnx.defs.onnx_opset_version():
        raise FerflowError(f"setting opset: {opset} above onnx {onnx.__version__}'s {onnx.defs.onnx_opset_version()}")
    model, ckpt = checkpoint.load_model(args.checkpoint)
    split = load_split(args.data)
    if len(split) == 0:
        raise FerflowError(f"{args.data}: split file holds no images")
    size = int(ckpt["image_size"])
    if split.images.shape[1:3] != (size, size):
        raise FerflowError(
            f"{args.data}: images are {split.images.shape[1]}×{split.images.shape[2]}, "
            f"the checkpoint expects {size}×{size}"
        )
    x = to_model_input(split.images, int(ckpt["arch_kwargs"]["in_channels"]))
    proto, exporter = to_onnx(fuse_batchnorm(model), example_input(ckpt, 2), opset)
    written = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if written != opset:
        raise FerflowError(f"setting opset: {opset} asked, but the {exporter} exporter wrote opset {written}")
    onnx.helper.set_model_props(proto, metadata(ckpt))
    with atomic_path(args.out) as tmp:
        onnx.save_model(proto, tmp)
        onnx.checker.check_model(str(tmp))
        report = compare(model, ort_session(tmp, threads=torch.get_num_threads()), x, args.batch_size)
        report.update(
            {
                "exporter": exporter,
                "opset": opset,
                "batchnorm_nodes": count_ops(proto, "BatchNormalization"),
                "checkpoint": str(args.checkpoint),
                "data": str(args.data),
                "atol": args.atol,
                "torch": torch.__version__,
                "onnxruntime": ort.__version__,
            }
        )
        print(
            f"ferflow export-onnx: {report['n_images']} images, exporter {exporter}, opset {opset}: "
            f"max |logit diff| {report['max_abs_diff']:.3g}, "
            f"max |probability diff| {report['max_abs_diff_probabilities']:.3g}, "
            f"{report['n_mismatches']} prediction mismatch(es), "
            f"{report['batchnorm_nodes']} BatchNormalization node(s) left"
        )
        if not report["predictions_match"]:
            raise FerflowError(
                f"{args.out}: ONNX Runtime and PyTorch disagree on {report['n_mismatches']} prediction(s) "
                f"of {args.data}"
            )
        if report["max_abs_diff"] > args.atol:
            raise FerflowError(
                f"{args.out}: ONNX logits differ from PyTorch by {report['max_abs_diff']:.3g} > --atol {args.atol}"
            )
        write_json(args.check_out, report)
    seed_dir = Path(args.checkpoint).parent / f"seed{ckpt.get('seed')}"  # a deployed final: its seed's run folder
    tracking.log_to_mlflow(args, seed_dir, {}, Path(args.out))
    return 0
