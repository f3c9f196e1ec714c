"""Bad input, as a hostile user gives it: every case is one line naming the file or key, a non-zero exit and no
output. One table of (command line, expected fragment); the files it names are made by the fixture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from PIL import Image

from ferflow import checkpoint
from ferflow.cli import main
from ferflow.inference import fuse_batchnorm
from ferflow.ort import INPUT, OUTPUT, metadata
from ferflow.predict.photos import annotate
from ferflow.predict.recognizer import Face
from ferflow.storage import Split, save_split

N = 16


def split_file(path: Path, images: np.ndarray, labels: np.ndarray | None = None) -> Path:
    """A split file written with numpy directly (so it may break the format)."""
    labels = np.arange(len(images)) % 7 if labels is None else labels
    with open(path, "wb") as fh:
        np.savez(fh, images=images, labels=labels, ids=np.array([f"i{i}" for i in range(len(images))]))
    return path


def onnx_model(path: Path, name: str, shape: list[int | str]) -> Path:
    """A linear classifier as ONNX whose one input is ``name`` of ``shape``, with ferflow's metadata."""
    flat = helper.make_node("Flatten", [name], ["flat"], axis=1)
    weights = helper.make_tensor("w", TensorProto.FLOAT, [2304, 7], np.zeros(2304 * 7, np.float32))
    matmul = helper.make_node("MatMul", ["flat", "w"], [OUTPUT])
    graph = helper.make_graph(
        [flat, matmul],
        "linear",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", 7])],
        initializer=[weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    ckpt = {"arch": "linear", "classes": checkpoint.make(torch.nn.Identity(), "x", {})["classes"], "image_size": 48}
    helper.set_model_props(
        model, metadata({**ckpt, "arch_kwargs": {"in_channels": 1}, "normalization": {"mean": 0.5, "std": 0.5}})
    )
    onnx.save_model(model, str(path))
    return path


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of good and bad inputs, named as the table below uses them."""
    d = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (N, 48, 48), dtype=np.uint8)
    save_split(d / "ok.npz", Split(gray, np.arange(N) % 7, [f"i{i}" for i in range(N)]))
    for stage in ("data", "data64"):
        (d / stage).mkdir()
    save_split(d / "data" / "train.npz", Split(gray, np.arange(N) % 7, [f"i{i}" for i in range(N)]))
    save_split(d / "data" / "val.npz", Split(gray, np.arange(N) % 7, [f"i{i}" for i in range(N)]))
    split_file(d / "float.npz", gray.astype(np.float32) / 255)
    split_file(d / "labels9.npz", gray, np.full(N, 9))
    split_file(d / "big.npz", rng.integers(0, 256, (N, 64, 64), dtype=np.uint8))
    (d / "truncated.npz").write_bytes((d / "ok.npz").read_bytes()[:3000])
    checkpoint.save_untrained(d / "tiny.pt", "fernettiny", in_channels=1, num_classes=7)
    checkpoint.save_untrained(d / "two.pt", "fernettiny", in_channels=2, num_classes=7)
    ckpt = checkpoint.read(d / "tiny.pt")
    checkpoint.save(d / "classes.pt", {**ckpt, "classes": ckpt["classes"][:6]})
    checkpoint.save(d / "arch.pt", {**ckpt, "arch": "resnet"})
    checkpoint.save(d / "kwargs.pt", {**ckpt, "arch_kwargs": {**ckpt["arch_kwargs"], "depth": 3}})
    checkpoint.save(d / "six.pt", {**ckpt, "arch_kwargs": {**ckpt["arch_kwargs"], "num_classes": 6}})
    (d / "faces" / "test" / "happy").mkdir(parents=True)
    Image.fromarray(gray[0]).save(d / "faces" / "test" / "happy" / "a.png")
    (d / "empty").mkdir()
    (d / "empty" / "notes.txt").write_text("no image here")
    onnx_model(d / "named.onnx", "image", ["batch", 1, 48, 48])
    onnx_model(d / "flat.onnx", INPUT, ["batch", 1, 2304])
    (d / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    return d


def out(d: Path) -> list[str]:
    """Output options pointing into ``d/out`` (which must stay absent)."""
    return ["--out", str(d / "out" / "o")]


CASES = [
    # (command line with {d} for the fixture folder, fragment of the one error line)
    ("evaluate --checkpoint {d}/tiny.pt --data {d}/float.npz", "float.npz: not a ferflow split file (images are float"),
    (
        "evaluate --checkpoint {d}/tiny.pt --data {d}/labels9.npz",
        "labels9.npz: not a ferflow split file (labels outside",
    ),
    ("evaluate --checkpoint {d}/tiny.pt --data {d}/big.npz", "big.npz: not a ferflow split file (images have shape"),
    ("evaluate --checkpoint {d}/tiny.pt --data {d}/truncated.npz", "truncated.npz: not a ferflow split file"),
    ("evaluate --checkpoint {d}/classes.pt --data {d}/ok.npz", "classes.pt: classes ['angry'"),
    ("evaluate --checkpoint {d}/six.pt --data {d}/ok.npz", "six.pt: weights that do not fit"),
    ("evaluate --checkpoint {d}/arch.pt --data {d}/ok.npz", "arch.pt: weights that do not fit its arch 'resnet'"),
    ("evaluate --checkpoint {d}/kwargs.pt --data {d}/ok.npz", "kwargs.pt: weights that do not fit"),
    ("evaluate --checkpoint {d}/tiny.pt --data {d}/ok.npz --threads 0", "argument --threads: must be >= 1, got 0"),
    ("evaluate --checkpoint {d}/tiny.pt --data {d}/ok.npz --batch-size 0", "argument --batch-size: must be >= 1"),
    (
        'export-onnx --checkpoint {d}/tiny.pt --data {d}/ok.npz --check-out {d}/out/c.json --settings {{"opset":99}}',
        "setting opset: 99",
    ),
    (
        "export-onnx --checkpoint {d}/tiny.pt --data {d}/ok.npz --check-out {d}/out/c.json --batch-size 0",
        "argument --batch-size: must be >= 1",
    ),
    (
        "quantize --onnx {d}/flat.onnx --calibration {d}/ok.npz --data {d}/ok.npz --check-out {d}/out/c.json",
        "flat.onnx: ONNX input input ['batch', 1, 2304], expected one 'input'",
    ),
    (
        "quantize --onnx {d}/flat.onnx --calibration {d}/ok.npz --data {d}/ok.npz --check-out {d}/out/c.json "
        '--settings {{"threads":2.0}}',
        "invalid setting threads of ferflow quantize: 2.0 is not of type 'integer'",
    ),
    ("latency --checkpoint {d}/tiny.pt --onnx {d}/flat.onnx --int8-check {d}/empty", "empty: unreadable"),
    (
        "latency --checkpoint {d}/tiny.pt --onnx {d}/flat.onnx --int8-check {d}/binary.json",
        "binary.json: not valid JSON",
    ),
    ("predict {d}/empty --strict --annotate {d}/out", "empty: no image in this folder"),
    (
        "predict {d}/faces --no-detect --checkpoint {d}/named.onnx --annotate {d}/out",
        "named.onnx: ONNX input image ['batch', 1, 48, 48], expected one 'input'",
    ),
    (
        'train --model fernettiny --experiment x --data-dir {d}/data --model-options {{"width":2}}',
        "unknown --model-options key.width",
    ),
    ("train --model fernettiny --experiment x --data-dir {d}/data --threads 0", "argument --threads: must be >= 1"),
    (
        'train --model fernettiny --experiment x --data-dir {d}/data --settings {{"threads":2.0}}',
        "invalid training setting threads: 2.0",
    ),
    (
        "train --model fernettiny --experiment x --data-dir {d}/data --teacher {d}/two.pt --settings "
        '{{"distillation":{{"teacher":"a/b","temperature":4,"weight":0.5}}}}',
        "two.pt: a teacher of 2-channel images",
    ),
    (
        "train --model fernettiny --experiment x --data-dir {d}/data --teacher {d}/classes.pt --settings "
        '{{"distillation":{{"teacher":"a/b","temperature":4,"weight":0.5}}}}',
        "classes.pt: classes ['angry'",
    ),
]


def run_cli(argv: list[str]) -> int:
    """``ferflow`` in-process; an argparse refusal (SystemExit) counts as its exit status."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.parametrize(("command", "fragment"), CASES, ids=[c[1][:40] for c in CASES])
def test_bad_input_is_one_line_a_non_zero_exit_and_no_output(
    bad: Path, command: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.format(d=bad) for a in command.split(" ")]
    if "--out" not in argv and argv[0] not in ("predict",):
        argv += out(bad)
    code = run_cli(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert err and fragment in err[-1], err[-3:]
    assert not (bad / "out").exists()


def test_a_decompression_bomb_under_evaluate_is_one_line(
    bad: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # a 48×48 face is then a bomb (2 × 100 < 2,304 pixels)
    assert run_cli(["evaluate", "--checkpoint", str(bad / "tiny.pt"), "--data", str(bad / "faces"), *out(bad)]) == 1
    assert "a.png: not a readable image (Image size (2304 pixels) exceeds limit" in capsys.readouterr().err
    assert not (bad / "out").exists()


def test_a_16_bit_photo_is_annotated_as_it_looks(tmp_path: Path) -> None:
    """A 16-bit grayscale photo's annotated copy keeps its content (it was an all-white copy)."""
    ramp = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).astype(np.uint16)
    image = Image.fromarray(ramp)
    assert image.mode == "I;16"
    annotate(image, [Face((0, 0, 8, 8), {"happy": 1.0})], tmp_path / "a.png")
    copy = np.asarray(Image.open(tmp_path / "a.png").convert("L"))
    assert copy[40:, 40:].std() > 10 and copy[32:, :].mean() < 250


def test_fuse_batchnorm_says_when_it_cannot_trace_and_lets_other_errors_through(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Branching(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x if x.sum() > 0 else -x

    class Broken(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise ValueError("a bug in the model")

    model = Branching()
    assert fuse_batchnorm(model) is model
    assert "batch norm left unfolded, torch.fx cannot trace Branching" in capsys.readouterr().err
    with pytest.raises(ValueError, match="a bug in the model"):
        fuse_batchnorm(Broken())
