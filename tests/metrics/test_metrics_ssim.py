"""progface's own SSIM / MS-SSIM (progface.metrics.ssim_maps, quality.ssim, quality.ms_ssim).

piq is the oracle, run in float64 so that any difference is progface's; the tolerance 1e-10 is
far above float64 rounding (~1e-15) and far below what a wrong window, constant, pooling or
reduction gives (1e-4 and more).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from progface.metrics.quality import MS_SSIM_WEIGHTS, ms_ssim, ms_ssim_kernel_for, ssim
from progface.metrics.ssim_maps import gaussian_filter_valid, gaussian_window_1d, ssim_maps

REPO = Path(__file__).resolve().parents[2]
PARITY = 1e-10


def _rand(n: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, height, width, generator=gen, dtype=torch.float64)


def _smooth(n: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Face-like smoothness: bilinear upsampling of a coarse random image."""
    coarse = _rand(n, max(height // 8, 2), max(width // 8, 2), seed)
    return F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)


def _pairs(hr: torch.Tensor) -> dict[str, torch.Tensor]:
    """Predictions for a target: noisy, shifted, unrelated, inverted (negative terms), equal."""
    gen = torch.Generator().manual_seed(7)
    noise = torch.randn(hr.shape, generator=gen, dtype=hr.dtype)
    return {
        "noisy": (hr + 0.05 * noise).clamp(0.0, 1.0),
        "shifted": torch.roll(hr, shifts=(1, 2), dims=(-2, -1)),
        "unrelated": torch.rand(hr.shape, generator=gen, dtype=hr.dtype),
        "inverted": 1.0 - hr,
        "identical": hr.clone(),
    }


def _cases(sizes):
    return [
        pytest.param(make, size, id=f"{make.__name__[1:]}-{size[0]}x{size[1]}")
        for make in (_rand, _smooth)
        for size in sizes
    ]


# --- the shared core --------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 8, 11])
def test_separable_filter_equals_the_2d_window(k):
    # outer(g, g) as one 2-D correlation (conv2d does not flip), also for the asymmetric k = 8
    t = _rand(2, 23, 19)
    g = gaussian_window_1d(k)
    kernel = torch.outer(g, g).expand(3, 1, k, k)
    expected = F.conv2d(t, kernel, groups=3)
    out = gaussian_filter_valid(t, g)
    assert out.shape == expected.shape == (2, 3, 24 - k, 20 - k)
    assert out.dtype == torch.float64
    assert torch.allclose(out, expected, atol=1e-15, rtol=0)


def test_separable_filter_refuses_a_window_larger_than_the_image():
    with pytest.raises(ValueError, match="larger than the images"):
        gaussian_filter_valid(_rand(1, 10, 30), gaussian_window_1d(11))


def test_odd_window_matches_piqs_2d_kernel():
    piq_filters = pytest.importorskip("piq.functional", reason="piq is the SSIM oracle")
    for k in (3, 7, 11):
        g = gaussian_window_1d(k)
        expected = piq_filters.gaussian_filter(k, 1.5, dtype=torch.float64)[0]
        assert torch.allclose(torch.outer(g, g), expected, atol=1e-15, rtol=0)


def test_maps_of_constant_images_have_the_closed_form():
    # Zero variances: cs = c2 / c2 = 1 and SSIM is the luminance term alone.
    a, b, c1, c2 = 0.8, 0.3, 1e-4, 9e-4
    x = torch.full((1, 3, 12, 15), a, dtype=torch.float64)
    y = torch.full((1, 3, 12, 15), b, dtype=torch.float64)
    ssim_map, cs_map = ssim_maps(x, y, gaussian_window_1d(5), c1, c2)
    assert ssim_map.shape == cs_map.shape == (1, 3, 8, 11)
    assert torch.allclose(cs_map, torch.ones_like(cs_map), atol=1e-12, rtol=0)
    luminance = (2 * a * b + c1) / (a * a + b * b + c1)
    assert torch.allclose(ssim_map, torch.full_like(ssim_map, luminance), atol=1e-12, rtol=0)


def test_maps_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        ssim_maps(_rand(1, 12, 12), _rand(1, 12, 13), gaussian_window_1d(3), 1e-4, 9e-4)


# --- parity with piq --------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "size"), _cases([(128, 128), (96, 131), (11, 11)]))
def test_ssim_matches_piq(make, size):
    piq = pytest.importorskip("piq", reason="piq is the SSIM oracle")
    hr = make(5, *size)
    for name, sr in _pairs(hr).items():
        expected = piq.ssim(sr, hr, data_range=1.0, reduction="none", downsample=False)
        out = ssim(sr, hr)
        assert out.shape == (5,) and out.dtype == torch.float64
        assert (out - expected).abs().max() < PARITY, name


@pytest.mark.parametrize(("make", "size"), _cases([(128, 128), (161, 170), (65, 97)]))
def test_ms_ssim_matches_piq(make, size):
    # odd sides take piq's padding (top and left, by replication) before each pooling
    piq = pytest.importorskip("piq", reason="piq is the MS-SSIM oracle")
    hr = make(3, *size)  # few: piq's 2-D float64 filtering is slow
    kernel = ms_ssim_kernel_for(min(size))
    for name, sr in _pairs(hr).items():
        expected = piq.multi_scale_ssim(
            sr, hr, kernel_size=kernel, data_range=1.0, reduction="none"
        )
        out = ms_ssim(sr, hr)
        assert out.shape == (3,) and out.dtype == torch.float64
        assert (out - expected).abs().max() < PARITY, name


@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_ms_ssim_with_a_given_window_matches_piq(kernel):
    piq = pytest.importorskip("piq", reason="piq is the MS-SSIM oracle")
    hr = _smooth(3, 128, 128)
    sr = _pairs(hr)["noisy"]
    expected = piq.multi_scale_ssim(sr, hr, kernel_size=kernel, data_range=1.0, reduction="none")
    assert (ms_ssim(sr, hr, kernel_size=kernel) - expected).abs().max() < PARITY


def test_parity_holds_for_float32_inputs_and_clamped_predictions():
    # float32 inputs are widened to float64 first; the prediction is clamped to [0, 1] first
    piq = pytest.importorskip("piq", reason="piq is the SSIM oracle")
    hr = _smooth(3, 128, 128).float()
    sr = hr + 0.2 * torch.randn(hr.shape, generator=torch.Generator().manual_seed(3))
    assert sr.min() < 0 and sr.max() > 1
    x, y = sr.double().clamp(0.0, 1.0), hr.double()
    expected = piq.ssim(x, y, data_range=1.0, reduction="none", downsample=False)
    assert (ssim(sr, hr) - expected).abs().max() < PARITY
    expected = piq.multi_scale_ssim(x, y, kernel_size=7, data_range=1.0, reduction="none")
    assert (ms_ssim(sr, hr) - expected).abs().max() < PARITY


# --- known answers ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(128, 128), (161, 170)])
def test_identical_images_give_exactly_one(size):
    hr = _smooth(3, *size)
    assert ssim(hr.clone(), hr).tolist() == [1.0, 1.0, 1.0]
    assert ms_ssim(hr.clone(), hr).tolist() == [1.0, 1.0, 1.0]


def _per_channel_constant(values: tuple[float, float, float], size: int) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).view(1, 3, 1, 1).expand(2, 3, size, size)


def test_constant_images_have_the_closed_form():
    # Per channel: cs = 1 at every scale and SSIM = l = (2 a b + c1) / (a^2 + b^2 + c1), which
    # pooling keeps; so SSIM = mean_c l_c and MS-SSIM = mean_c l_c ** 0.1333.
    a, b = (0.2, 0.5, 0.9), (0.3, 0.5, 0.6)
    c1 = 0.01**2
    lum = [(2 * p * q + c1) / (p * p + q * q + c1) for p, q in zip(a, b)]
    x, y = _per_channel_constant(a, 128), _per_channel_constant(b, 128)
    assert ssim(x, y).tolist() == pytest.approx([sum(lum) / 3] * 2, abs=1e-12)
    expected = sum(v ** MS_SSIM_WEIGHTS[-1] for v in lum) / 3
    assert ms_ssim(x, y).tolist() == pytest.approx([expected] * 2, abs=1e-12)


def test_negative_terms_are_clipped_to_zero_not_nan():
    # An inverted image has negative cs at the finest scale: clipped to 0, so MS-SSIM is 0.
    hr = _smooth(2, 128, 128)
    out = ms_ssim(1.0 - hr, hr)
    assert out.tolist() == [0.0, 0.0]
    assert (ssim(1.0 - hr, hr) < 0).all()  # SSIM itself may be negative


def test_values_do_not_depend_on_batching():
    hr = _smooth(5, 128, 128)
    sr = _pairs(hr)["noisy"]
    for fn in (ssim, ms_ssim):
        batched = fn(sr, hr)
        one_by_one = torch.cat([fn(sr[i : i + 1], hr[i : i + 1]) for i in range(5)])
        assert torch.allclose(batched, one_by_one, atol=1e-15, rtol=0)


# --- no piq at run time -----------------------------------------------------------------------

PROBE = """
import sys
import torch
from progface.metrics.quality import ms_ssim, ssim
hr = torch.rand(2, 3, 128, 128)
sr = (hr + 0.05 * torch.randn_like(hr)).clamp(0, 1)
assert 0 < float(ssim(sr, hr).min()) < 1 and 0 < float(ms_ssim(sr, hr).min()) < 1
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("piq", "torchvision"))
assert not loaded, loaded
"""


def test_ssim_and_ms_ssim_import_neither_piq_nor_torchvision():
    paths = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
