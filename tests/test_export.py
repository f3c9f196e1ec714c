"""ferflow export-onnx and ferflow latency on small random-init checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from ferflow import checkpoint, models
from ferflow.cli import main
from ferflow.preprocess import to_model_input
from ferflow.storage import Split, save_split

N_IMAGES = 70


def make_checkpoint(path: Path, arch: str, in_channels: int) -> Path:
    torch.manual_seed(1)
    kwargs = {"in_channels": in_channels, "num_classes": 7, "dropout": 0.0}
    checkpoint.save(path, checkpoint.make(models.build(arch, **kwargs), arch, kwargs))
    return path


def make_split(path: Path, shape: tuple[int, ...]) -> Path:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (N_IMAGES, *shape), dtype=np.uint8)
    save_split(path, Split(images, rng.integers(0, 7, N_IMAGES), [f"img{i}" for i in range(N_IMAGES)]))
    return path


@pytest.fixture(scope="module", params=[("resnet", 3), ("mobilenetv2", 1)], ids=["resnet-rgb", "mobilenetv2-gray"])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A checkpoint, its test split and its ONNX export (done once per architecture)."""
    arch, channels = request.param
    root = tmp_path_factory.mktemp(arch)
    ckpt = make_checkpoint(root / "best.pt", arch, channels)
    data = make_split(root / "test.npz", (48, 48) if channels == 1 else (48, 48, 3))
    out = {"ckpt": ckpt, "data": data, "onnx": root / "final" / "model.onnx", "check": root / "final" / "onnx_check.json"}
    code = main(["export-onnx", "--checkpoint", str(ckpt), "--data", str(data), "--out", str(out["onnx"]),
                 "--check-out", str(out["check"])])
    assert code == 0
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


def test_latency_json(exported, tmp_path, capsys):
    out = tmp_path / "latency.json"
    code = main(["latency", "--checkpoint", str(exported["ckpt"]), "--onnx", str(exported["onnx"]), "--out", str(out),
                 "--batch-sizes", "1", "3", "--repeats", "3", "--warmup", "1", "--threads", "1"])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["threads"] == 1 and doc["repeats"] == 3
    assert [(r["engine"], r["batch_size"]) for r in doc["rows"]] == [
        ("pytorch", 1), ("onnxruntime", 1), ("pytorch", 3), ("onnxruntime", 3)]
    for r in doc["rows"]:
        assert r["ms_per_batch"] == r["median_ms"] and r["min_ms"] <= r["median_ms"] <= r["max_ms"]
        assert r["images_per_s"] == pytest.approx(r["batch_size"] * 1000 / r["median_ms"], rel=1e-2)
        assert r["repeats"] == 3
    printed = capsys.readouterr().out
    assert "onnxruntime" in printed
    assert ("target ≤ 0.5 ms" in printed) == (doc["arch"] == "resnet")


def test_latency_refuses_onnx_of_another_shape(exported, tmp_path, capsys):
    other_channels = 1 if checkpoint.read(exported["ckpt"])["arch_kwargs"]["in_channels"] == 3 else 3
    other = make_checkpoint(tmp_path / "other.pt", "resnet", other_channels)
    code = main(["latency", "--checkpoint", str(other), "--onnx", str(exported["onnx"]), "--out", str(tmp_path / "l.json")])
    assert code == 1 and "does not fit" in capsys.readouterr().err
    assert not (tmp_path / "l.json").exists()


def test_export_refuses_bad_input_and_writes_nothing(tmp_path, capsys):
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {}}, foreign)
    data = make_split(tmp_path / "test.npz", (48, 48))
    args = ["--data", str(data), "--out", str(tmp_path / "o" / "model.onnx"), "--check-out", str(tmp_path / "o" / "check.json")]
    assert main(["export-onnx", "--checkpoint", str(foreign), *args]) == 1
    assert "not a ferflow checkpoint" in capsys.readouterr().err

    ckpt = make_checkpoint(tmp_path / "best.pt", "resnet", 1)
    wrong = make_split(tmp_path / "big.npz", (64, 64))
    args[1] = str(wrong)
    assert main(["export-onnx", "--checkpoint", str(ckpt), *args]) == 1
    assert "the checkpoint expects 48×48" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


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
    assert main(["export-onnx", "--checkpoint", str(ckpt), "--data", str(data), "--out", str(tmp_path / "m.onnx"),
                 "--check-out", str(check)]) == 0
    report = json.loads(check.read_text())
    assert report["exporter"] == "torchscript" and report["predictions_match"] and report["max_abs_diff"] < 1e-4
