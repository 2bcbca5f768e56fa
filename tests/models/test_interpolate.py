from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from progface.models.interpolate import Interpolate


@pytest.mark.parametrize(
    ("mode", "pil"), [("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC)]
)
def test_matches_pil_upsampling(mode, pil):
    rng = np.random.default_rng(0)
    lr = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
    ref = np.asarray(Image.fromarray(lr).resize((128, 128), pil)).astype(np.float64)
    x = torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255
    out = Interpolate(mode=mode)(x)[0].permute(1, 2, 0).double().numpy() * 255
    assert out.shape == (128, 128, 3)
    assert np.abs(out - ref).max() <= 1.0 + 1e-4  # float32 round trip of 8-bit values
    assert np.abs(out - ref).mean() < 0.01


def test_shape_range_and_bad_input():
    out = Interpolate(mode="bicubic", size=64)(torch.rand(2, 3, 16, 16))
    assert out.shape == (2, 3, 64, 64) and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match=r"expected a \[B,C,H,W\] tensor"):
        Interpolate(mode="bilinear")(torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="mode must be"):
        Interpolate(mode="nearest")


def test_constant_image_is_reproduced_exactly():
    x = torch.full((1, 3, 16, 16), 100 / 255)
    for mode in ("bilinear", "bicubic"):
        assert torch.allclose(Interpolate(mode=mode)(x), torch.full((1, 3, 128, 128), 100 / 255))
