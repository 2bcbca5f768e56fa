"""Image panels and the 8-bit PSNR of written files: known answers and parity with the slow,
obvious ways (F.interpolate nearest, PIL drawing, float64 PSNR)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from progface.io.figures import LABEL_HEIGHT, grid, psnr_uint8, to_pil, to_uint8
from progface.metrics.quality import psnr


def _reference_grid(rows, labels, size=128, gap=2):
    """The panel drawn tile by tile with PIL and torch (the obvious, slow way)."""
    cols = len(labels)
    canvas = Image.new("RGB", (cols * size + (cols - 1) * gap, LABEL_HEIGHT + len(rows) * size
                               + (len(rows) - 1) * gap), "white")  # fmt: skip
    draw = ImageDraw.Draw(canvas)
    for c, label in enumerate(labels):
        draw.text((c * (size + gap) + 3, 1), label, fill="black")
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            big = F.interpolate(tile[None], size=(size, size), mode="nearest")[0]
            arr = (big.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
            canvas.paste(Image.fromarray(arr), (c * (size + gap), LABEL_HEIGHT + r * (size + gap)))
    return canvas


def test_grid_is_pixel_identical_to_drawing_tile_by_tile():
    gen = torch.Generator().manual_seed(0)
    tiles = [torch.rand(3, 16, 16, generator=gen), torch.rand(3, 128, 128, generator=gen) * 1.4 - 0.2,
             torch.rand(3, 100, 100, generator=gen)]  # fmt: skip
    rows, labels = [tiles, tiles[::-1]], ["LR 16px", "bicubic", "SR (ours)"]
    fast, slow = grid(rows, labels), _reference_grid(rows, labels)
    assert fast.size == slow.size == (3 * 128 + 2 * 2, LABEL_HEIGHT + 2 * 128 + 2)
    assert np.array_equal(np.asarray(fast), np.asarray(slow))
    # uint8 tiles (what upscale passes) give the same panel as float ones
    assert np.array_equal(np.asarray(grid([[to_uint8(t) for t in tiles]], labels)),
                          np.asarray(grid([tiles], labels)))  # fmt: skip


def test_to_uint8_rounds_and_clamps_a_batch():
    x = torch.tensor([-0.5, 0.0, 0.5 / 255, 1.49 / 255, 0.5, 1.0, 2.0]).view(1, 1, 1, 7)
    x = x.expand(2, 3, 1, 7)
    out = to_uint8(x)
    assert out.shape == (2, 1, 7, 3) and out.dtype == np.uint8
    assert out[1, 0, :, 2].tolist() == [0, 0, 0, 1, 128, 255, 255]  # half rounds to even: 0.5->0
    assert to_pil(x[0]).size == (7, 1)


def test_psnr_uint8_known_answers_and_float_parity():
    a = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    b = a.copy()
    b[0, 0, 0, 0] = 255  # one error of 255 in 48 values: MSE = 255^2 / 48
    out = psnr_uint8(b, a)
    assert out[0] == pytest.approx(10 * math.log10(48)) and out[1] == math.inf
    gen = torch.Generator().manual_seed(1)
    x, y = (torch.randint(0, 256, (5, 3, 32, 32), generator=gen) / 255 for _ in range(2))
    assert np.allclose(psnr_uint8(to_uint8(x), to_uint8(y)), psnr(x, y).numpy(), atol=1e-9)
