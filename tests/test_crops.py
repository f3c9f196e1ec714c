"""Training on random crops (``train.crop``), progressive resizing (``train.low_res``), networks that centre-crop
whole faces (``input_crop``), and the ten-crop test-time augmentation (``crops10``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from datastage import make_stage
from ferflow import checkpoint, cli, models
from ferflow.inference import TTA_VIEWS, fuse_batchnorm, predict_probabilities, tta_crop
from ferflow.storage import load_split
from ferflow.train.engine import (
    DeviceData,
    EpochBatches,
    affine_matrices,
    augment,
    crop_matrices,
    epoch_generator,
    then_crop,
    view_side,
)
from ferflow.train.settings import resolve_settings
from training import train_args

OFF = {"horizontal_flip": False, "rotation": 0, "shear": 0, "translate": 0, "zoom": 0}


def window_offsets(crops: torch.Tensor, images: torch.Tensor) -> list[tuple[int, int]]:
    """The (top, left) offset of the window of each image that each crop equals exactly (fails when none does)."""
    size, side = crops.shape[-1], images.shape[-1]
    found = []
    for crop, image in zip(crops, images):
        matches = [
            (y, x)
            for y in range(side - size + 1)
            for x in range(side - size + 1)
            if torch.allclose(crop, image[:, y : y + size, x : x + size], atol=1e-5)
        ]
        assert matches, "a crop is not a whole-pixel window of its image"
        found.append(matches[0])
    return found


def test_random_crops_are_whole_pixel_windows_at_every_offset() -> None:
    images = torch.rand(400, 1, 12, 12) * 2 - 1
    crops = augment(images, crop_matrices(len(images), 12, 8, torch.Generator().manual_seed(0)), 8)
    assert crops.shape == (400, 1, 8, 8)
    offsets = window_offsets(crops, images)
    assert {y for y, _ in offsets} == set(range(5)) and {x for _, x in offsets} == set(range(5))


def test_a_crop_after_a_flip_is_a_window_of_the_mirrored_image() -> None:
    images = torch.rand(6, 1, 10, 10) * 2 - 1
    generator = torch.Generator().manual_seed(3)
    flip = affine_matrices(6, {**OFF, "horizontal_flip": True}, generator)
    flipped = augment(images, flip)
    crops = augment(images, then_crop(flip, crop_matrices(6, 10, 7, generator)), 7)
    window_offsets(crops, flipped)


def test_epoch_batches_are_crops_and_the_uncropped_draws_are_unchanged(tmp_path: Path) -> None:
    stage = make_stage(tmp_path / "stage", {label: 10 for label in range(7)})
    data = DeviceData.of(load_split(stage / "train.npz"), torch.device("cpu"), 1)
    plain = resolve_settings({"batch_size": 16})
    cropped = resolve_settings({"batch_size": 16, "crop": 40})
    x_plain = next(iter(EpochBatches(data, plain, epoch_generator(1, 1), False)))[0]
    x_crop = next(iter(EpochBatches(data, cropped, epoch_generator(1, 1), False)))[0]
    assert x_plain.shape[-2:] == (48, 48) and x_crop.shape[-2:] == (40, 40)
    # without crop the batch is exactly the affine warp of the same draws (crop draws come after them)
    generator = epoch_generator(1, 1)
    order = torch.randperm(len(data), generator=generator)[:16]
    theta = affine_matrices(16, plain["augmentation"], generator)
    assert torch.equal(x_plain, augment(data.batch(order, False), theta))


def test_a_network_trained_on_crops_centre_crops_whole_faces() -> None:
    torch.manual_seed(0)
    net = models.build("fernetfasttiny", in_channels=1, input_crop=40).eval()
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        assert torch.equal(net(x), net(x[:, :, 4:44, 4:44]))
        assert not torch.allclose(net(x), net(x[:, :, :40, :40]))


def test_ten_crops_are_the_corners_and_centre_each_mirrored() -> None:
    x = torch.arange(2 * 48 * 48, dtype=torch.float32).reshape(2, 1, 48, 48)
    views = TTA_VIEWS["crops10"](x, 40)
    assert len(views) == 10 and all(v.shape == (2, 1, 40, 40) for v in views)
    assert torch.equal(views[0], x[:, :, :40, :40]) and torch.equal(views[3], x[:, :, 8:, 8:])
    assert torch.equal(views[4], x[:, :, 4:44, 4:44]) and torch.equal(views[9], x[:, :, 4:44, 4:44].flip(3))


def test_crops10_averages_the_softmax_of_the_ten_views() -> None:
    torch.manual_seed(0)
    net = models.build("fernetfasttiny", in_channels=1, input_crop=40).eval()
    ckpt = {"arch_kwargs": {"in_channels": 1, "input_crop": 40}}
    images = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    x = torch.from_numpy(images).float().div(255).mul(2).sub(1).unsqueeze(1)
    with torch.no_grad():
        expected = torch.stack([net(v).softmax(1) for v in TTA_VIEWS["crops10"](x, 40)]).mean(0).numpy()
    assert np.allclose(predict_probabilities(net, ckpt, images, 2, "crops10"), expected, atol=1e-6)
    assert tta_crop({"arch_kwargs": {}}, 48) == 42  # a model trained on whole faces: crops of 7/8 of the side


def test_train_on_crops_records_the_crop_and_refuses_what_cannot_crop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stage = make_stage(tmp_path / "stage", {label: 6 for label in range(7)})
    settings = {"epochs": 1, "batch_size": 16, "crop": 40, "amp": False}
    assert cli.main(train_args(stage, tmp_path / "run", settings, model="fernetfasttiny")) == 0
    ckpt = checkpoint.read(tmp_path / "run" / "best.pt")
    assert ckpt["arch_kwargs"]["input_crop"] == 40
    model = checkpoint.load_model(tmp_path / "run" / "best.pt")[0]
    assert model(torch.zeros(1, 1, 48, 48)).shape == (1, 7)
    for arch, bad, message in (
        ("resnet", {"crop": 40}, "architecture resnet cannot centre-crop"),
        ("fernetfasttiny", {"crop": 48}, "48 px is not smaller than the 48-px images"),
    ):
        assert cli.main(train_args(stage, tmp_path / arch, {**settings, **bad}, model=arch)) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("ferflow train: error: setting crop:") and message in err and "\n" not in err
        assert not (tmp_path / arch / "best.pt").exists()


def test_compile_trains_and_falls_back_to_eager_where_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stage = make_stage(tmp_path / "stage", {label: 6 for label in range(7)})
    settings = {"epochs": 1, "batch_size": 16, "amp": False, "compile": True}

    def broken(model: torch.nn.Module) -> object:
        def fail(x: torch.Tensor) -> torch.Tensor:
            from torch._dynamo.exc import TorchDynamoException  # the compiler's errors, not every RuntimeError

            raise TorchDynamoException("no C++ compiler here\nsecond line")

        return fail

    monkeypatch.setattr(torch, "compile", broken)
    eager = settings | {"compile": False}
    assert cli.main(train_args(stage, tmp_path / "fallback", settings, model="fernetfasttiny")) == 0
    assert "warning: torch.compile failed, training eagerly: no C++ compiler here" in capsys.readouterr().out
    assert cli.main(train_args(stage, tmp_path / "eager", eager, model="fernetfasttiny")) == 0
    fell_back = checkpoint.read(tmp_path / "fallback" / "best.pt")["model"]
    plain = checkpoint.read(tmp_path / "eager" / "best.pt")["model"]
    assert all(torch.equal(fell_back[k], plain[k]) for k in plain)  # the fallback is the eager computation


def test_progressive_resizing_trains_early_epochs_on_smaller_views_of_the_same_windows(tmp_path: Path) -> None:
    stage = make_stage(tmp_path / "stage", {label: 10 for label in range(7)})
    data = DeviceData.of(load_split(stage / "train.npz"), torch.device("cpu"), 1)
    settings = resolve_settings({"batch_size": 16, "crop": 40, "epochs": 10, "low_res": {"side": 32, "fraction": 0.4}})
    assert [view_side(settings, epoch) for epoch in range(1, 11)] == [32] * 4 + [None] * 6
    assert view_side(resolve_settings({"epochs": 10}), 1) is None
    full = next(iter(EpochBatches(data, settings, epoch_generator(1, 1), False)))
    small = next(iter(EpochBatches(data, settings, epoch_generator(1, 1), False, 32)))
    assert full[0].shape[-2:] == (40, 40) and small[0].shape[-2:] == (32, 32)
    assert torch.equal(full[2], small[2])  # the same images in the same order: only the sampling grid differs
    # a 32-px view of a 40-px window is that window resampled: their means agree, their pixels do not
    assert torch.allclose(full[0].mean((1, 2, 3)), small[0].mean((1, 2, 3)), atol=0.05)
    # without a crop (and no warp) the whole face is resized with antialiasing
    plain = resolve_settings({"batch_size": 16, "augmentation": OFF})
    x = next(iter(EpochBatches(data, plain, epoch_generator(1, 1), False, 24)))[0]
    order = torch.randperm(len(data), generator=epoch_generator(1, 1))[:16]
    faces = data.batch(order, False)
    resized = torch.nn.functional.interpolate(faces, size=(24, 24), mode="bilinear", antialias=True)
    assert torch.allclose(x, resized, atol=1e-6)
    assert torch.allclose(x.mean((1, 2, 3)), faces.mean((1, 2, 3)), atol=0.02)


def test_low_res_trains_a_full_size_model_and_refuses_a_side_that_is_not_smaller(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stage = make_stage(tmp_path / "stage", {label: 6 for label in range(7)})
    settings = {"epochs": 2, "batch_size": 16, "crop": 40, "amp": False, "low_res": {"side": 32, "fraction": 0.5}}
    assert cli.main(train_args(stage, tmp_path / "run", settings, model="fernetfasttiny")) == 0
    model = checkpoint.load_model(tmp_path / "run" / "best.pt")[0]
    assert checkpoint.read(tmp_path / "run" / "best.pt")["arch_kwargs"]["input_crop"] == 40
    assert model(torch.zeros(1, 1, 48, 48)).shape == (1, 7)
    bad = settings | {"low_res": {"side": 40, "fraction": 0.5}}
    assert cli.main(train_args(stage, tmp_path / "bad", bad, model="fernetfasttiny")) == 1
    err = capsys.readouterr().err.strip()
    assert err == "ferflow train: error: setting low_res.side: 40 px is not smaller than the 40-px training views"
    assert not (tmp_path / "bad" / "best.pt").exists()


def test_a_network_that_crops_folds_its_batch_norm(capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    net = models.build("fernetfast", in_channels=1, input_crop=40).eval()
    with torch.no_grad():  # batch norms that are not the identity
        for norm in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            norm.running_mean.uniform_(-1, 1), norm.running_var.uniform_(0.5, 2), norm.bias.uniform_(-0.5, 0.5)
    fused = fuse_batchnorm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert "left unfolded" not in capsys.readouterr().err
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        assert torch.allclose(fused(x), net(x), atol=1e-5)  # whole faces: centre-cropped inside the graph
        assert torch.allclose(fused(x[:, :, 4:44, 4:44]), net(x), atol=1e-5)
