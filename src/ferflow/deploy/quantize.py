"""Static int8 quantization of an exported ONNX model with ONNX Runtime's tools, checked against fp32.

The fp32 model (``ferflow export-onnx``; batch norm already folded into the convolutions) first goes
through ``onnxruntime.quantization.shape_inference.quant_pre_process`` (symbolic shape inference and
ONNX Runtime's basic graph optimisations: constant folding, Conv+BatchNorm and Conv+Add fusion), then
``quantize_static`` in QDQ format: weights int8 per output channel in 7 bits (``reduce_range``),
activations uint8 (``--activations``; uint8×int8 is what the VNNI and AMX int8 kernels take). The 7-bit
weights matter on x86 CPUs without VNNI (AVX2-only): there ONNX Runtime multiplies uint8 by int8 with
VPMADDUBSW, whose 16-bit sums saturate with full 8-bit weights. Measured on an AVX2-only EPYC,
``fernetfast`` lost 15.7 points of PublicTest accuracy with 8-bit weights (same prediction as fp32 on
55 % of the faces) and none with 7-bit ones (96.9 %); int8 activations also avoid it (97.9 %) but ran
slower than fp32 there (0.85 against 0.57 ms at batch 1). Activation ranges are calibrated on
``calibration_images`` seeded random images of ``--calibration`` (the validation split; rounded down to
whole batches of ``--batch-size``) with ``calibration_method``. ``--settings`` holds these two and
``threads`` (the config's ``export`` keys). The ferflow metadata (classes, image size, channels,
normalisation) is copied over, so ``ferflow predict`` and ``ferflow latency`` take the int8 model like
the fp32 one.

Both models then classify every image of ``--data`` (the test split) in ONNX Runtime; ``int8_check.json``
holds accuracy and macro-F1 of each, the share of images on which they predict the same class, the
largest absolute logit difference, the file sizes and the quantization settings. The accuracy drop of
int8 is printed against the deployment target (≤ 0.5 points); missing it is reported, not an error.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from ferflow.cli import positive_int, seed
from ferflow.config import add_settings_argument
from ferflow.deploy.export import count_ops
from ferflow.errors import FerflowError
from ferflow.faces import to_model_input
from ferflow.inference import EVAL_BATCH
from ferflow.metrics import compute_metrics
from ferflow.ort import INPUT, OUTPUT, input_shape, logits_of, ort_session, read_metadata
from ferflow.storage import Split, atomic_path, check_outputs, load_split, write_json

METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
ACTIVATIONS = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
MAX_ACCURACY_DROP = 0.5  # percentage points: the deployment target


class SplitReader(CalibrationDataReader):
    """Feeds model inputs made from uint8 images to the calibrator, ``batch_size`` at a time."""

    def __init__(self, images: np.ndarray, in_channels: int, batch_size: int) -> None:
        self.batches = iter(
            [to_model_input(images[i : i + batch_size], in_channels).numpy() for i in range(0, len(images), batch_size)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        return None if batch is None else {INPUT: batch}


def check_fits(shape: tuple[int, int, int], split: Split, path: str) -> None:
    """Check the split's images against the model's input ``(C, H, W)``: some, of its height and width."""
    _, height, width = shape
    if len(split) == 0:
        raise FerflowError(f"{path}: split file holds no images")
    if split.images.shape[1:3] != (height, width):
        raise FerflowError(
            f"{path}: images are {split.images.shape[1]}×{split.images.shape[2]}, the model expects {height}×{width}"
        )


def quantize(
    fp32: str | Path,
    out: Path,
    calibration: np.ndarray,
    in_channels: int,
    method: str,
    activations: str,
    batch_size: int,
) -> onnx.ModelProto:
    """Write the int8 QDQ model of ``fp32`` to ``out``; returns it (with the fp32 model's metadata)."""
    with tempfile.TemporaryDirectory(prefix="ferflow-quantize-") as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared))
        quantize_static(
            str(prepared),
            str(out),
            SplitReader(calibration, in_channels, batch_size),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            weight_type=QuantType.QInt8,
            activation_type=ACTIVATIONS[activations],
            calibrate_method=METHODS[method],
        )
    proto = onnx.load(str(out))
    source = onnx.load(str(fp32), load_external_data=False)
    onnx.helper.set_model_props(proto, {p.key: p.value for p in source.metadata_props})
    onnx.save_model(proto, str(out))
    return proto


def scores(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    metrics = compute_metrics(labels, logits.argmax(1))
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--onnx", required=True, help="the fp32 model written by 'ferflow export-onnx'")
    parser.add_argument("--calibration", required=True, help="split file (.npz) to calibrate on: the validation split")
    parser.add_argument("--data", required=True, help="split file (.npz) to compare fp32 and int8 on: the test split")
    parser.add_argument("--out", required=True, help="the int8 ONNX model to write (model.int8.onnx)")
    parser.add_argument("--check-out", required=True, help="the comparison JSON to write (int8_check.json)")
    parser.add_argument("--activations", default="uint8", choices=sorted(ACTIVATIONS), help="activation type")
    parser.add_argument(
        "--batch-size", type=positive_int, default=EVAL_BATCH, help="batch of calibration and comparison"
    )
    parser.add_argument("--seed", type=seed, default=0, help="seed of the calibration sample")
    add_settings_argument(parser, "quantize")


def run(args: argparse.Namespace) -> int:
    settings = args.settings  # calibration_images, calibration_method, threads: checked against the schema
    check_outputs([args.out, args.check_out], [args.onnx, args.calibration, args.data])
    fp32 = ort_session(args.onnx, settings["threads"])
    read_metadata(fp32, args.onnx)  # predict and latency take only a model that describes itself
    val, test = load_split(args.calibration), load_split(args.data)
    shape = input_shape(fp32, args.onnx)
    check_fits(shape, val, args.calibration)
    check_fits(shape, test, args.data)
    in_channels = shape[0]
    rng = np.random.default_rng(args.seed)
    count = min(settings["calibration_images"], len(val))
    count -= count % min(args.batch_size, count)  # equal batches: the histogram calibrators stack them
    chosen = np.sort(rng.choice(len(val), count, replace=False))
    x = to_model_input(test.images, in_channels)
    with atomic_path(args.out) as tmp:
        proto = quantize(
            args.onnx,
            tmp,
            val.images[chosen],
            in_channels,
            settings["calibration_method"],
            args.activations,
            args.batch_size,
        )
        int8 = ort_session(tmp, settings["threads"])
        logits = {
            name: logits_of(lambda b, s=session: s.run([OUTPUT], {INPUT: b.numpy()})[0], x, args.batch_size)
            for name, session in (("fp32", fp32), ("int8", int8))
        }
        result = {name: scores(values, test.labels) for name, values in logits.items()}
        drop = 100 * (result["fp32"]["accuracy"] - result["int8"]["accuracy"])
        report: dict[str, Any] = {
            **result,
            "accuracy_drop_points": round(drop, 3),
            "max_accuracy_drop_points": MAX_ACCURACY_DROP,
            "agreement": float((logits["fp32"].argmax(1) == logits["int8"].argmax(1)).mean()),
            "max_abs_logit_diff": float(np.abs(logits["fp32"] - logits["int8"]).max()),
            "bytes": {"fp32": Path(args.onnx).stat().st_size, "int8": tmp.stat().st_size},
            "n_images": len(test),
            "calibration": {
                "data": str(args.calibration),
                "images": len(chosen),
                "method": settings["calibration_method"],
                "seed": args.seed,
            },
            "quantization": {
                "format": "QDQ",
                "weights": "int8 per channel, 7-bit range",
                "activations": args.activations,
                "quantized_nodes": count_ops(proto, "DequantizeLinear"),
            },
            "onnx": str(args.onnx),
            "data": str(args.data),
            "onnxruntime": ort.__version__,
        }
        met = "met" if drop <= MAX_ACCURACY_DROP else "NOT met"
        fp, q = result["fp32"], result["int8"]
        print(
            f"ferflow quantize: {len(test)} images of {args.data}: accuracy fp32 {100 * fp['accuracy']:.2f} % / "
            f"int8 {100 * q['accuracy']:.2f} % (drop {drop:.2f} points, target ≤ {MAX_ACCURACY_DROP}: {met}), "
            f"macro-F1 {100 * fp['macro_f1']:.2f} % / {100 * q['macro_f1']:.2f} %, agreement "
            f"{100 * report['agreement']:.2f} %, "
            f"size {report['bytes']['fp32']:,} → {report['bytes']['int8']:,} bytes"
        )
        write_json(args.check_out, report)
    return 0
