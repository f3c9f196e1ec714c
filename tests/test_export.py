"""ferflow export-onnx, ferflow quantize and ferflow latency on small random-init checkpoints."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from sklearn.metrics import f1_score

from ferflow import checkpoint
from ferflow.cli import main
from ferflow.deploy.latency import time_runs
from ferflow.faces import to_model_input
from ferflow.storage import Split, save_split

N_IMAGES = 70


def make_checkpoint(path: Path, arch: str, in_channels: int) -> Path:
    torch.manual_seed(1)
    checkpoint.save_untrained(path, arch, in_channels=in_channels, num_classes=7, dropout=0.0)
    return path


def make_split(path: Path, shape: tuple[int, ...], seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (N_IMAGES, *shape), dtype=np.uint8)
    save_split(path, Split(images, rng.integers(0, 7, N_IMAGES), [f"img{i}" for i in range(N_IMAGES)]))
    return path


def export_argv(ckpt: Path, data: Path, onnx_path: Path, check: Path, *extra: str) -> list[str]:
    """The ``ferflow export-onnx`` command line of a checkpoint, its check split and the two outputs."""
    return [
        "export-onnx",
        "--checkpoint",
        str(ckpt),
        "--data",
        str(data),
        "--out",
        str(onnx_path),
        "--check-out",
        str(check),
        *extra,
    ]


@pytest.fixture(scope="module", params=[("resnet", 3), ("mobilenetv2", 1)], ids=["resnet-rgb", "mobilenetv2-gray"])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A checkpoint, its test split and its ONNX export (done once per architecture)."""
    arch, channels = request.param
    root = tmp_path_factory.mktemp(arch)
    ckpt = make_checkpoint(root / "best.pt", arch, channels)
    data = make_split(root / "test.npz", (48, 48) if channels == 1 else (48, 48, 3))
    out = {
        "ckpt": ckpt,
        "data": data,
        "onnx": root / "final" / "model.onnx",
        "check": root / "final" / "onnx_check.json",
    }
    code = main(export_argv(ckpt, data, out["onnx"], out["check"], "--settings", '{"opset": 18}'))
    assert code == 0
    return out


@pytest.fixture(scope="module")
def quantized(exported: dict[str, Path]) -> dict[str, Path]:
    """The int8 model of the export, calibrated on a separate random split."""
    root = exported["onnx"].parent
    channels = checkpoint.read(exported["ckpt"])["arch_kwargs"]["in_channels"]
    val = make_split(root.parent / "val.npz", (48, 48) if channels == 1 else (48, 48, 3), seed=5)
    out = {"int8": root / "model.int8.onnx", "check": root / "int8_check.json", "val": val}
    assert (
        main(
            [
                "quantize",
                "--onnx",
                str(exported["onnx"]),
                "--calibration",
                str(val),
                "--data",
                str(exported["data"]),
                "--out",
                str(out["int8"]),
                "--check-out",
                str(out["check"]),
                "--settings",
                '{"threads": 1}',
            ]
        )
        == 0
    )
    return out


def test_onnx_matches_pytorch(exported):
    check = json.loads(exported["check"].read_text())
    assert check["predictions_match"] is True and check["n_mismatches"] == 0
    assert check["n_images"] == N_IMAGES
    assert 0 <= check["max_abs_diff"] < 1e-4
    assert check["exporter"] in ("dynamo", "torchscript") and check["opset"] == 18

    # independently of the command: ONNX Runtime at two batch sizes (the batch axis is dynamic) vs PyTorch
    proto = onnx.load(exported["onnx"])
    onnx.checker.check_model(proto)
    assert {p.key for p in proto.metadata_props} >= {"ferflow_arch", "ferflow_classes", "ferflow_in_channels"}
    model, ckpt = checkpoint.load_model(exported["ckpt"])
    # the model has batch norm; the exported graph has none left (folded into the convolutions)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert check["batchnorm_nodes"] == 0
    assert "BatchNormalization" not in {n.op_type for n in proto.graph.node} and "Conv" in {
        n.op_type for n in proto.graph.node
    }
    session = ort.InferenceSession(str(exported["onnx"]), providers=["CPUExecutionProvider"])
    assert isinstance(session.get_inputs()[0].shape[0], str)
    with np.load(exported["data"]) as data:
        x = to_model_input(data["images"], ckpt["arch_kwargs"]["in_channels"])
    for batch in (x[:1], x[:9]):
        with torch.inference_mode():
            expected = model(batch).numpy()
        got = session.run(None, {"input": batch.numpy()})[0]
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-4
        assert np.array_equal(got.argmax(1), expected.argmax(1))


def test_int8_model_and_comparison(exported, quantized):
    proto = onnx.load(quantized["int8"])
    onnx.checker.check_model(proto)
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops and "BatchNormalization" not in ops
    int8_weights = [t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    per_channel = [t for t in int8_weights if len(t.dims) == 4]  # conv weights, one scale per output channel
    assert per_channel
    scales = {t.name: t for t in proto.graph.initializer}
    assert any(
        len(scales[n.input[1]].dims) == 1 and scales[n.input[1]].dims[0] > 1
        for n in proto.graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in {t.name for t in per_channel}
    )
    # weights in the 7-bit range, so that CPUs without VNNI do not saturate uint8×int8 sums; the largest
    # weight of each channel reaches the range's end
    weights = [onnx.numpy_helper.to_array(t) for t in per_channel]
    assert max(int(np.abs(w).max()) for w in weights) == 64
    fp32_meta = {p.key: p.value for p in onnx.load(exported["onnx"]).metadata_props}
    assert {p.key: p.value for p in proto.metadata_props} == fp32_meta

    check = json.loads(quantized["check"].read_text())
    assert check["bytes"] == {"fp32": exported["onnx"].stat().st_size, "int8": quantized["int8"].stat().st_size}
    assert check["bytes"]["int8"] < 0.45 * check["bytes"]["fp32"]
    assert check["calibration"]["images"] == N_IMAGES and check["n_images"] == N_IMAGES
    # the scores, recomputed here from both models on the test split
    with np.load(exported["data"]) as data:
        labels = data["labels"]
        x = to_model_input(data["images"], int(fp32_meta["ferflow_in_channels"])).numpy()
    logits = {
        name: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
        for name, path in (("fp32", exported["onnx"]), ("int8", quantized["int8"]))
    }
    for name in ("fp32", "int8"):
        assert check[name]["accuracy"] == pytest.approx(float((logits[name].argmax(1) == labels).mean()))
        assert check[name]["macro_f1"] == pytest.approx(
            f1_score(labels, logits[name].argmax(1), average="macro", zero_division=0)
        )
    assert check["agreement"] == pytest.approx(float((logits["fp32"].argmax(1) == logits["int8"].argmax(1)).mean()))
    assert check["accuracy_drop_points"] == pytest.approx(
        100 * (check["fp32"]["accuracy"] - check["int8"]["accuracy"]), abs=1e-3
    )
    # int8 approximates fp32: errors small against the spread of the logits
    spread = logits["fp32"].max() - logits["fp32"].min()
    assert check["max_abs_logit_diff"] == pytest.approx(float(np.abs(logits["fp32"] - logits["int8"]).max()), rel=1e-5)
    assert check["max_abs_logit_diff"] < 0.1 * spread


def test_quantize_refuses_wrong_calibration_images_and_writes_nothing(exported, tmp_path, capsys):
    wrong = make_split(tmp_path / "val64.npz", (64, 64))
    out, check = tmp_path / "q" / "model.int8.onnx", tmp_path / "q" / "int8_check.json"
    code = main(
        [
            "quantize",
            "--onnx",
            str(exported["onnx"]),
            "--calibration",
            str(wrong),
            "--data",
            str(exported["data"]),
            "--out",
            str(out),
            "--check-out",
            str(check),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "val64.npz: not a ferflow split file (images have shape (70, 64, 64)" in err
    assert not out.exists() and not check.exists()


def test_time_runs_honours_least_repeats_and_least_seconds():
    assert len(time_runs(lambda: None, warmup=0, repeats=5)) == 5
    times = time_runs(lambda: time.sleep(0.002), warmup=1, repeats=2, min_seconds=0.05)
    assert len(times) > 2 and sum(times) >= 0.05 and min(times) >= 0.002


def test_latency_json(exported, quantized, tmp_path, capsys):
    out = tmp_path / "latency.json"
    code = main(
        [
            "latency",
            "--checkpoint",
            str(exported["ckpt"]),
            "--onnx",
            str(exported["onnx"]),
            "--out",
            str(out),
            "--int8-onnx",
            str(quantized["int8"]),
            "--int8-check",
            str(quantized["check"]),
            "--warmup",
            "1",
            "--settings",
            '{"latency_batch_sizes": [1, 3], "latency_repeats": 3, "threads": 1, "latency_min_seconds": 0}',
        ]
    )
    assert code == 0
    doc = json.loads(out.read_text())
    comparison = json.loads(quantized["check"].read_text())
    assert doc["int8_comparison"] == {
        k: comparison[k] for k in ("fp32", "int8", "accuracy_drop_points", "agreement", "bytes")
    }
    assert doc["threads"] == 1 and doc["repeats"] == 3 and doc["int8_onnx"] == str(quantized["int8"])
    assert [(r["engine"], r["batch_size"]) for r in doc["rows"]] == [
        ("pytorch", 1),
        ("onnxruntime", 1),
        ("onnxruntime-int8", 1),
        ("pytorch", 3),
        ("onnxruntime", 3),
        ("onnxruntime-int8", 3),
    ]
    for r in doc["rows"]:
        assert r["ms_per_batch"] == r["median_ms"] and r["min_ms"] <= r["median_ms"] <= r["max_ms"]
        assert r["images_per_s"] == pytest.approx(r["batch_size"] * 1000 / r["median_ms"], rel=1e-2)
        assert r["repeats"] == 3
    printed = capsys.readouterr().out
    assert "onnxruntime-int8" in printed
    assert printed.count("target ≤ 0.5 ms") == 3  # next to each batch-1 figure
    # the CPU's capability, as PyTorch and /proc/cpuinfo tell it
    capability = doc["cpu_capability"]
    assert capability["torch"] == torch.backends.cpu.get_cpu_capability()
    assert f"CPU capability {capability['torch']}" in printed
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = next(
            line.split(":", 1)[1].split() for line in cpuinfo.read_text().splitlines() if line.startswith("flags")
        )
        assert capability["avx2"] == ("avx2" in flags) and capability["avx512_vnni"] == ("avx512_vnni" in flags)
        assert capability["amx"] == any(f.startswith("amx") for f in flags)


def test_latency_refuses_a_foreign_int8_check_and_writes_nothing(exported, quantized, tmp_path, capsys):
    foreign = tmp_path / "check.json"
    foreign.write_text('{"accuracy": 0.5}')
    out = tmp_path / "latency.json"
    code = main(
        [
            "latency",
            "--checkpoint",
            str(exported["ckpt"]),
            "--onnx",
            str(exported["onnx"]),
            "--out",
            str(out),
            "--int8-onnx",
            str(quantized["int8"]),
            "--int8-check",
            str(foreign),
            "--warmup",
            "0",
            "--settings",
            '{"latency_batch_sizes": [1], "latency_repeats": 1, "latency_min_seconds": 0}',
        ]
    )
    assert code == 1 and "check.json: not a comparison" in capsys.readouterr().err
    assert not out.exists()


def test_latency_refuses_onnx_of_another_shape(exported, tmp_path, capsys):
    other_channels = 1 if checkpoint.read(exported["ckpt"])["arch_kwargs"]["in_channels"] == 3 else 3
    other = make_checkpoint(tmp_path / "other.pt", "resnet", other_channels)
    code = main(
        ["latency", "--checkpoint", str(other), "--onnx", str(exported["onnx"]), "--out", str(tmp_path / "l.json")]
    )
    assert code == 1 and "does not fit" in capsys.readouterr().err
    assert not (tmp_path / "l.json").exists()


def test_export_refuses_bad_input_and_writes_nothing(tmp_path, capsys):
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {}}, foreign)
    data = make_split(tmp_path / "test.npz", (48, 48))
    outputs = (tmp_path / "o" / "model.onnx", tmp_path / "o" / "check.json")
    assert main(export_argv(foreign, data, *outputs)) == 1
    assert "not a ferflow checkpoint" in capsys.readouterr().err

    ckpt = make_checkpoint(tmp_path / "best.pt", "resnet", 1)
    wrong = make_split(tmp_path / "big.npz", (64, 64))
    assert main(export_argv(ckpt, wrong, *outputs)) == 1
    assert "big.npz: not a ferflow split file (images have shape" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_export_refuses_a_mistyped_setting_and_writes_nothing(tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "best.pt", "resnet", 1)
    data = make_split(tmp_path / "test.npz", (48, 48))
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as exc:
        main(export_argv(ckpt, data, out / "model.onnx", out / "check.json", "--settings", '{"opset": "x"}'))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--settings" in err and "invalid setting opset of ferflow export-onnx" in err
    assert not out.exists()


def test_falls_back_to_torchscript_exporter(monkeypatch, tmp_path):
    real_export = torch.onnx.export

    def dynamo_fails(*args, **kwargs):
        if kwargs.get("dynamo"):
            raise RuntimeError("simulated dynamo failure")
        return real_export(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", dynamo_fails)
    ckpt = make_checkpoint(tmp_path / "best.pt", "mobilenetv2", 1)
    data = make_split(tmp_path / "test.npz", (48, 48))
    check = tmp_path / "check.json"
    assert main(export_argv(ckpt, data, tmp_path / "m.onnx", check)) == 0
    report = json.loads(check.read_text())
    assert report["exporter"] == "torchscript" and report["predictions_match"] and report["max_abs_diff"] < 1e-4
