"""Architectures: the study's parameter counts, shapes, VGG16 freezing and pretrained loading."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from ferflow import models
from ferflow.errors import FerflowError
from ferflow.models import vgg16 as vgg16_module


@pytest.mark.parametrize(("name", "expected"), [("resnet", 481_551), ("mobilenetv2", 132_935)])
def test_parameter_counts_match_the_study(name: str, expected: int) -> None:
    model = models.build(name, in_channels=3)
    assert models.count_parameters(model) == expected
    assert models.count_parameters(model, trainable_only=True) == expected


@pytest.mark.parametrize("name", models.names())
@pytest.mark.parametrize("channels", [1, 3])
def test_forward_and_features_shapes(name: str, channels: int) -> None:
    model = models.build(name, in_channels=channels, num_classes=7, dropout=0.1).eval()
    x = torch.randn(3, channels, 48, 48)
    with torch.no_grad():
        logits, emb = model(x), model.features(x)
    assert logits.shape == (3, 7)
    assert emb.ndim == 2 and emb.shape[0] == 3
    assert torch.allclose(model.classifier(emb), logits)  # forward = classifier(features)


def test_vgg16_freezes_all_but_block5() -> None:
    model = models.build("vgg16")
    conv = [m for m in model.base if isinstance(m, torch.nn.Conv2d)]
    assert len(conv) == 13
    block5 = sum(p.numel() for m in conv[-3:] for p in m.parameters())
    head = sum(p.numel() for p in model.head.parameters()) + sum(p.numel() for p in model.classifier.parameters())
    assert block5 == 3 * (512 * 512 * 9 + 512)
    assert (
        models.count_parameters(model, trainable_only=True) == block5 + head == 7_099_399
    )  # the Keras notebook's count
    assert all(not p.requires_grad for m in conv[:-3] for p in m.parameters())
    assert 14_700_000 < models.count_parameters(model) < 14_800_000


def test_vgg16_pretrained_offline_fails_naming_the_file_and_where_to_put_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty cache; downloads fail (conftest)
    with pytest.raises(FerflowError, match=r"cannot download https://\S+/vgg16-397923af\.pth") as info:
        models.build("vgg16", pretrained=True)
    assert f"put it at {tmp_path / 'checkpoints' / 'vgg16-397923af.pth'}" in str(info.value)
    assert "\n" not in str(info.value)
    assert not any((tmp_path / "checkpoints").iterdir())


def imagenet_like_state() -> tuple[nn.Sequential, dict[str, torch.Tensor]]:
    """A VGG16 convolutional base with seeded weights and its state as torchvision's file holds it."""
    torch.manual_seed(0)
    imagenet = make_layers(cfgs["D"])
    state = {f"features.{k}": v for k, v in imagenet.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # ignored: only the convolutional base is used
    return imagenet, state


def test_vgg16_pretrained_downloads_through_torchvision_into_the_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    imagenet, state = imagenet_like_state()
    calls = []

    def download(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        calls.append((url, hash_prefix, progress))
        torch.save(state, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    model = models.build("vgg16", pretrained=True)
    assert calls == [(vgg16_module.WEIGHTS.url, "397923af", True)]  # torchvision's URL, hash check, progress bar
    assert vgg16_module.cached_weights_path() == tmp_path / "checkpoints" / "vgg16-397923af.pth"
    assert vgg16_module.cached_weights_path().is_file()
    assert torch.equal(model.base[28].weight, imagenet[28].weight)
    models.build("vgg16", pretrained=True)  # from the cache: no second download
    assert len(calls) == 1


@pytest.mark.parametrize("channels", [1, 3])
def test_vgg16_pretrained_loads_cached_weights(tmp_path, monkeypatch, channels: int) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    imagenet, state = imagenet_like_state()
    (tmp_path / "checkpoints").mkdir()
    torch.save(state, vgg16_module.cached_weights_path())
    model = models.build("vgg16", in_channels=channels, pretrained=True).eval()
    assert torch.equal(model.base[28].weight, imagenet[28].weight)
    gray = torch.rand(2, 1, 48, 48)
    rgb = models.build("vgg16", in_channels=3, pretrained=True).eval()
    if channels == 1:  # summed first-layer weights: a gray image gives what its RGB repetition gives
        assert torch.allclose(model.base(gray), rgb.base(gray.expand(-1, 3, -1, -1)), atol=1e-5)


def test_ferflow_models_lists_counts() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ferflow.cli", "models"], capture_output=True, text=True, check=True
    ).stdout
    lines = {line.split()[0]: line.split()[1:3] for line in out.splitlines()[1:]}
    assert set(lines) == set(models.names())
    assert lines["resnet"] == ["481,551", "481,551"]
    assert lines["mobilenetv2"] == ["132,935", "132,935"]
    assert lines["vgg16"][1] == "7,099,399"


@pytest.mark.parametrize("name", models.names())
def test_declared_options_are_the_builders_keyword_parameters(name: str) -> None:
    assert models.option_names(name) == models.signature_options(name)
