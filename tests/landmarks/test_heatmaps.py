"""coords <-> heatmaps: rendering, face-alignment's decoding rule, rescaling."""

from __future__ import annotations

import math

import pytest
import torch

from progface.landmarks.heatmaps import (
    HeatmapDecoder,
    HeatmapRenderer,
    decode_heatmaps,
    render_heatmaps,
    rescale_points,
)


def test_render_values_are_the_gaussian_formula():
    pts = torch.tensor([[[3.0, 2.0], [0.5, 4.25]]])
    hm = render_heatmaps(pts, (6, 8), sigma=1.5, peak=2.0)
    assert hm.shape == (1, 2, 6, 8)
    for n, (px, py) in enumerate(pts[0].tolist()):
        for y in range(6):
            for x in range(8):
                want = 2.0 * math.exp(-((x - px) ** 2 + (y - py) ** 2) / (2 * 1.5**2))
                assert hm[0, n, y, x].item() == pytest.approx(want, rel=1e-5, abs=1e-7)
    assert hm[0, 0, 2, 3].item() == pytest.approx(2.0)  # integer point: the peak value


def test_decode_quarter_pixel_rule_by_hand():
    hm = torch.zeros(1, 4, 5, 6)
    hm[0, 0, 2, 3] = 1.0  # isolated peak: no shift
    hm[0, 1, 2, 3], hm[0, 1, 2, 4], hm[0, 1, 1, 3] = 1.0, 0.5, 0.2  # right and up neighbours
    hm[0, 2, 3, 2], hm[0, 2, 3, 1], hm[0, 2, 4, 2] = 1.0, 0.4, 0.3  # left and down neighbours
    hm[0, 3, 0, 5], hm[0, 3, 0, 4] = 1.0, 0.9  # corner peak: border, no shift
    pts, scores = decode_heatmaps(hm, return_scores=True)
    assert pts[0].tolist() == [[3.0, 2.0], [3.25, 1.75], [1.75, 3.25], [5.0, 0.0]]
    assert scores[0].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert torch.equal(HeatmapDecoder()(hm), pts)


def test_render_then_decode_recovers_points_within_a_quarter_pixel():
    gen = torch.Generator().manual_seed(0)
    pts = 2 + torch.rand(3, 68, 2, generator=gen) * 60  # inside a 64-px map, off the border
    back = decode_heatmaps(render_heatmaps(pts, 64, sigma=1.5))
    err = (back - pts).abs()
    assert err.max() <= 0.25 + 1e-5  # the rule's bound per axis
    assert err.mean() < 0.15  # rounding alone would give 0.25 on average
    nearest = (pts.round() - pts).abs().mean()
    assert err.mean() < nearest


def test_module_wrappers_and_rescale():
    pts = torch.tensor([[[10.0, 20.0]]])
    assert torch.equal(HeatmapRenderer(32, sigma=2.0)(pts), render_heatmaps(pts, 32, sigma=2.0))
    # pixel centres: pixel 0 of a 64-px image covers pixels 0 and 1 of the 128-px image
    assert rescale_points(torch.tensor([[[0.0, 63.0]]]), 64, 128).tolist() == [[[0.5, 126.5]]]
    back = rescale_points(rescale_points(pts, 128, 64), 64, 128)
    assert torch.allclose(back, pts)
    assert rescale_points(pts, (100, 50), (200, 100)).tolist() == [[[20.5, 40.5]]]


def test_input_validation():
    with pytest.raises(ValueError, match=r"\[B, N, 2\]"):
        render_heatmaps(torch.zeros(68, 2), 64)
    with pytest.raises(ValueError, match="sigma"):
        render_heatmaps(torch.zeros(1, 68, 2), 64, sigma=0)
    with pytest.raises(ValueError, match=r"\[B, N, H, W\]"):
        decode_heatmaps(torch.zeros(68, 64, 64))
    with pytest.raises(TypeError):
        decode_heatmaps([[0.0]])
