"""Image conversions: odd modes and sizes become canonical 48×48 grayscale; model input in [-1, 1]."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ferflow.faces import to_face48, to_model_input


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "CMYK", "I;16", "F", "LA", "1"])
def test_odd_modes_become_gray48(mode: str) -> None:
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8))
    image = (
        rgb.convert(mode) if mode != "I;16" else Image.fromarray(np.asarray(rgb.convert("L")).astype(np.uint16) * 257)
    )
    out = to_face48(image)
    assert out.shape == (48, 48) and out.dtype == np.uint8
    assert out.std() > 0


def test_sixteen_bit_is_rescaled_not_clipped() -> None:
    gray = np.full((48, 48), 128, np.uint8)
    image = Image.fromarray(gray.astype(np.uint16) * 257)
    assert abs(int(to_face48(image).mean()) - 128) <= 1


def test_non_square_is_centre_cropped() -> None:
    arr = np.zeros((60, 120), np.uint8)
    arr[:, 30:90] = 255  # the centre square is white, the sides black
    out = to_face48(Image.fromarray(arr))
    assert out.min() > 200


def test_model_input_range_and_channels() -> None:
    images = np.array([np.zeros((48, 48)), np.full((48, 48), 255)], dtype=np.uint8)
    x = to_model_input(images, in_channels=3)
    assert x.shape == (2, 3, 48, 48)
    assert float(x[0].min()) == -1.0 and float(x[1].max()) == 1.0
    assert to_model_input(np.stack([images] * 3, axis=-1), in_channels=1).shape == (2, 1, 48, 48)
