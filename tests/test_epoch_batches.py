"""An epoch's random draws are made once and moved to the training device once (issue 25, item 4), and the
batches are bit-identical to drawing them batch by batch as the engine did before."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from batch_regularisers import mix, random_erasing
from datastage import make_stage
from ferflow.classes import CLASS_NAMES
from ferflow.storage import load_split
from ferflow.train import engine
from ferflow.train.engine import (
    DeviceData,
    EpochBatches,
    affine_matrices,
    augment,
    crop_matrices,
    epoch_generator,
    then_crop,
)
from ferflow.train.settings import resolve_settings

EVERYTHING = {
    "batch_size": 16,
    "random_erasing": 0.5,
    "mixup": 0.4,
    "cutmix": 1.0,
    "augmentation": {"horizontal_flip": True, "rotation": 10, "shear": 5, "translate": 0.1, "zoom": 0.1},
}


def batch_by_batch(data: DeviceData, settings: dict, generator: torch.Generator) -> list[tuple[torch.Tensor, ...]]:
    """The batches as the engine drew them before: each batch's draws made just before it is used."""
    size = settings["batch_size"]
    order = torch.randperm(len(data), generator=generator)
    if len(order) % size == 1:
        order = order[:-1]
    out = []
    for chunk in order.split(size):
        theta = affine_matrices(len(chunk), settings["augmentation"], generator)
        if settings["crop"]:
            theta = then_crop(theta, crop_matrices(len(chunk), data.side, settings["crop"], generator))
        x = augment(data.batch(chunk, False), theta, settings["crop"])
        if settings["random_erasing"]:
            x = random_erasing(x, settings["random_erasing"], generator)
        y = data.labels[chunk]
        x, targets = mix(x, F.one_hot(y, len(CLASS_NAMES)).float(), settings["mixup"], settings["cutmix"], generator)
        out.append((x, targets, y))
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DeviceData:
    stage = make_stage(tmp_path_factory.mktemp("stage"), {label: 9 for label in range(7)})
    return DeviceData.of(load_split(stage / "train.npz"), torch.device("cpu"), 1)


@pytest.mark.parametrize("crop", [None, 40])
def test_batches_are_bit_identical_to_drawing_them_batch_by_batch(data: DeviceData, crop: int | None) -> None:
    settings = resolve_settings({**EVERYTHING, "crop": crop})
    planned = list(EpochBatches(data, settings, epoch_generator(3, 2), False))
    expected = batch_by_batch(data, settings, epoch_generator(3, 2))
    assert len(planned) == len(expected) == 4  # 63 images: 16 + 16 + 16 + 15
    for got, want in zip(planned, expected):
        for a, b in zip(got, want):
            assert torch.equal(a, b)


def test_soft_labels_go_with_their_images_and_are_mixed_alike(data: DeviceData) -> None:
    labels = F.one_hot(data.labels, len(CLASS_NAMES)).float()
    with_soft = DeviceData(data.images, data.labels, data.in_channels, 0.8 * labels + 0.2 / len(CLASS_NAMES))
    settings = resolve_settings({**EVERYTHING, "crop": 40})
    batches = list(EpochBatches(with_soft, settings, epoch_generator(3, 2), False))
    plain = list(EpochBatches(data, settings, epoch_generator(3, 2), False))
    for (x, targets, _, soft), (x_plain, *_) in zip(batches, plain):
        assert torch.equal(x, x_plain)  # soft labels draw nothing from the epoch's generator
        torch.testing.assert_close(soft, 0.8 * targets + 0.2 / len(CLASS_NAMES))  # each row mixed like its label
    assert any(not torch.equal(t, t.round()) for _, t, _, _ in batches)  # mixup or cutmix did mix some rows
    assert all(soft is None for *_, soft in plain)


def test_an_epoch_moves_its_draws_to_the_device_once(data: DeviceData, monkeypatch: pytest.MonkeyPatch) -> None:
    moved: list[tuple[int, ...]] = []
    real = engine.to_device

    def counting(x: torch.Tensor, device: torch.device) -> torch.Tensor:
        moved.append(tuple(x.shape))
        return real(x, device)

    monkeypatch.setattr(engine, "to_device", counting)
    settings = resolve_settings({**EVERYTHING, "crop": 40, "batch_size": 8})
    batches = EpochBatches(data, settings, epoch_generator(1, 1), False)
    assert len(batches) == 8
    # index, affine maps, erasing masks, mixing partners: one transfer each for the whole epoch
    assert sorted(moved) == sorted([(63,), (63, 2, 3), (63, 40, 40), (63,)])
    list(batches)
    assert len(moved) == 4


def test_to_device_pins_host_memory_for_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    class Pinned:
        def to(self, device: torch.device, non_blocking: bool = False) -> str:
            calls.append(f"to {device} non_blocking={non_blocking}")
            return "moved"

    class Host:
        def pin_memory(self) -> Pinned:
            calls.append("pin")
            return Pinned()

    assert engine.to_device(Host(), torch.device("cuda", 0)) == "moved"  # type: ignore[arg-type]
    assert calls == ["pin", "to cuda:0 non_blocking=True"]
    x = torch.ones(3)
    assert engine.to_device(x, torch.device("cpu")) is x
