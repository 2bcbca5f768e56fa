"""Tests of the authors' SSIM / MS-SSIM re-implementation (progface.metrics.pfsr_protocol)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from progface.metrics.pfsr_protocol import (
    PFSR_MSSSIM_WEIGHTS,
    gaussian_window_1d,
    pfsr_msssim,
    pfsr_msssim_levels,
    pfsr_ssim,
)


def _const(value: float, size: int = 6) -> torch.Tensor:
    return torch.full((1, 3, size, size), value, dtype=torch.float64)


def test_pfsr_ssim_matches_piq(smooth_images, degrade):
    piq = pytest.importorskip("piq", reason="piq is the SSIM oracle")
    hr = smooth_images(3)
    sr = degrade(hr, noise=0.08)
    expected = piq.ssim(
        sr, hr, kernel_size=11, kernel_sigma=1.5, data_range=1.0, reduction="none", downsample=False
    )
    per_image = pfsr_ssim(sr, hr, size_average=False)
    assert per_image.shape == (3,)
    assert torch.allclose(per_image, expected, atol=1e-6, rtol=0)
    assert float(pfsr_ssim(sr, hr)) == pytest.approx(float(expected.mean()), abs=1e-6)
    # float32 inputs are evaluated in float64 too
    assert float(pfsr_ssim(sr.float(), hr.float())) == pytest.approx(
        float(pfsr_ssim(sr.float().double(), hr.float().double())), abs=1e-15
    )


def test_identical_images_give_one(smooth_images):
    hr = smooth_images(1)
    assert float(pfsr_ssim(hr.clone(), hr)) == pytest.approx(1.0, abs=1e-12)
    assert float(pfsr_msssim(hr.clone(), hr)) == pytest.approx(1.0, abs=1e-12)
    assert float(pfsr_msssim(hr.clone(), hr, fixed_exponent=True)) == pytest.approx(1.0, abs=1e-12)


def _luminance_ssim(a: float, b: float, data_range: float) -> float:
    c1 = (0.01 * data_range) ** 2
    return (2 * a * b + c1) / (a * a + b * b + c1)


@pytest.mark.parametrize(
    ("a", "b", "data_range"),
    [
        (0.6, 0.2, 1.0),  # ordinary [0, 1] prediction
        (-0.6, 0.2, 2.0),  # a predicted value below -0.5: min_val = -1, L = 2
        (-0.4, 0.2, 1.0),  # -0.4 is not below -0.5: L stays 1
        (200.0, 100.0, 255.0),  # max above 128: max_val = 255
        (0.2, -0.6, 1.0),  # only the prediction is looked at
    ],
)
def test_dynamic_range_guess_on_constant_images(a, b, data_range):
    # Constant images: zero variances, so cs = C2 / C2 = 1 and SSIM is the luminance term.
    out, cs = pfsr_ssim(_const(a), _const(b), full=True)
    assert float(cs) == pytest.approx(1.0, abs=1e-9)
    assert float(out) == pytest.approx(_luminance_ssim(a, b, data_range), abs=1e-9)


def test_dynamic_range_guess_changes_the_value():
    # The L = 2 and L = 1 answers differ, so the rule is observable: -0.598402 vs -0.599600.
    guessed = float(pfsr_ssim(_const(-0.6), _const(0.2)))
    assert guessed == pytest.approx(-0.2396 / 0.4004, abs=1e-9)
    forced = float(pfsr_ssim(_const(-0.6), _const(0.2), val_range=1.0))
    assert forced == pytest.approx(-0.2399 / 0.4001, abs=1e-9)
    assert abs(guessed - forced) > 1e-3
    # mixed: max > 128 and min < -0.5 gives L = 255 - (-1) = 256
    pred = _const(200.0)
    pred[..., 0, 0] = -1.0
    ssim_mixed = float(pfsr_ssim(pred, _const(100.0), val_range=256.0))
    assert float(pfsr_ssim(pred, _const(100.0))) == pytest.approx(ssim_mixed, abs=1e-12)
    assert float(pfsr_ssim(pred, _const(100.0), val_range=255.0)) != pytest.approx(
        ssim_mixed, abs=1e-9
    )


def test_gaussian_window_even_size_centred_at_index_4():
    g = gaussian_window_1d(8)
    expected = np.array([math.exp(-((x - 4) ** 2) / (2 * 1.5**2)) for x in range(8)])
    expected /= expected.sum()
    assert np.allclose(g.numpy(), expected, atol=1e-15)
    assert int(g.argmax()) == 4
    assert g[3] == pytest.approx(float(g[5]), abs=1e-15)
    assert float(g[0]) < float(g[7])  # asymmetric: index 0 is 4 taps away, index 7 only 3


def _level4_by_hand(pred: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """SSIM and cs of the 5th level at 128 px, computed with numpy from the description."""
    x = pred.numpy().reshape(*pred.shape[:2], 8, 16, 8, 16).mean(axis=(3, 5))  # 4 x 2x2 pooling
    y = target.numpy().reshape(*target.shape[:2], 8, 16, 8, 16).mean(axis=(3, 5))
    g = np.array([math.exp(-((i - 4) ** 2) / 4.5) for i in range(8)])
    w = np.outer(g, g) / g.sum() ** 2  # window 8 on an 8x8 image: one valid position
    mu_x = (w * x).sum(axis=(2, 3))
    mu_y = (w * y).sum(axis=(2, 3))
    var_x = (w * x * x).sum(axis=(2, 3)) - mu_x**2
    var_y = (w * y * y).sum(axis=(2, 3)) - mu_y**2
    cov = (w * x * y).sum(axis=(2, 3)) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    ssim = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs
    return float(ssim.mean()), float(cs.mean())


def test_msssim_levels_windows_and_last_level_by_hand(smooth_images, degrade):
    hr = smooth_images(2)
    sr = degrade(hr, noise=0.15)
    ssims, css = pfsr_msssim_levels(sr, hr)
    assert len(ssims) == len(css) == 5
    s4, c4 = _level4_by_hand(sr, hr)
    assert float(ssims[4]) == pytest.approx(s4, abs=1e-12)
    assert float(css[4]) == pytest.approx(c4, abs=1e-12)
    # level 0 is the plain 11x11 SSIM
    assert float(ssims[0]) == pytest.approx(float(pfsr_ssim(sr, hr)), abs=1e-15)


def test_msssim_levels_are_batch_means(smooth_images, degrade):
    hr = smooth_images(2)
    sr = degrade(hr, noise=0.15)
    both = pfsr_msssim_levels(sr, hr)
    first = pfsr_msssim_levels(sr[:1], hr[:1])
    second = pfsr_msssim_levels(sr[1:], hr[1:])
    for level in range(5):
        for k in range(2):
            mean = (float(first[k][level]) + float(second[k][level])) / 2
            assert float(both[k][level]) == pytest.approx(mean, abs=1e-12)


def test_msssim_exponent_bug(smooth_images, degrade):
    hr = smooth_images(2)
    sr = degrade(hr, noise=0.3)
    ssims, css = pfsr_msssim_levels(sr, hr)
    w = PFSR_MSSSIM_WEIGHTS
    s4 = float(ssims[4])
    cs_part = math.prod(float(c) ** wi for c, wi in zip(css[:4], w[:4], strict=True))
    buggy = float(pfsr_msssim(sr, hr))
    fixed = float(pfsr_msssim(sr, hr, fixed_exponent=True))
    assert fixed == pytest.approx(cs_part * s4 ** w[4], rel=1e-12)
    assert buggy == pytest.approx(cs_part * s4 ** (4 * w[4]), rel=1e-12)
    assert buggy / fixed == pytest.approx(s4 ** (3 * w[4]), rel=1e-12)
    assert s4 < 0.99 and abs(buggy / fixed - 1) > 1e-3  # the test pair makes the bug visible


def test_pfsr_input_validation():
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match="same shape"):
        pfsr_ssim(x, x[:1])
    with pytest.raises(ValueError, match="4-D"):
        pfsr_ssim(x[0], x[0])
    with pytest.raises(ValueError, match="at least 16x16"):
        pfsr_msssim(x[..., :8, :8], x[..., :8, :8])
    with pytest.raises(ValueError, match="window_size"):
        gaussian_window_1d(0)
