"""Known-answer tests for progface.metrics.quality."""

from __future__ import annotations

import math

import pytest
import torch

from progface.metrics.quality import ms_ssim, ms_ssim_kernel_for, psnr, ssim, y_psnr


def _const(value: float, n: int = 2, size: int = 16) -> torch.Tensor:
    return torch.full((n, 3, size, size), value, dtype=torch.float64)


# --- PSNR -----------------------------------------------------------------------------------


def test_psnr_constant_offset_0_1_is_20_db():
    out = psnr(_const(0.6), _const(0.5))
    assert out.shape == (2,)
    assert out.dtype == torch.float64
    assert torch.allclose(out, torch.full((2,), 20.0, dtype=torch.float64), atol=1e-9)


def test_psnr_one_8bit_step_is_48_1308_db(smooth_images):
    hr = smooth_images(3, size=32) * (254 / 255)  # room for +1/255 without clamping
    out = psnr(hr + 1 / 255, hr)
    expected = 20 * math.log10(255)  # 10 * log10(1 / (1/255)**2) = 48.1308...
    assert expected == pytest.approx(48.1308036, abs=1e-6)
    assert torch.allclose(out, torch.full((3,), expected, dtype=torch.float64), atol=1e-6)


def test_psnr_float32_input_computed_in_float64():
    # 0.6 - 0.5 in float32 is 0.10000002384..., so the PSNR differs from 20 dB by ~2e-6 dB:
    # the result must reflect the float32 values exactly, evaluated in float64.
    sr = _const(0.6).float()
    hr = _const(0.5).float()
    d = float(sr[0, 0, 0, 0].double() - hr[0, 0, 0, 0].double())
    assert psnr(sr, hr).dtype == torch.float64
    assert psnr(sr, hr)[0].item() == pytest.approx(-20 * math.log10(d), abs=1e-9)


def test_psnr_data_range_255():
    out = psnr(_const(130.0), _const(127.45), data_range=255.0)  # offset 2.55 = 1% of 255
    assert torch.allclose(out, torch.full((2,), 40.0, dtype=torch.float64), atol=1e-9)


def test_psnr_identical_images_is_inf():
    hr = _const(0.3)
    out = psnr(hr.clone(), hr)
    assert torch.isinf(out).all() and (out > 0).all()


def test_psnr_clamps_prediction():
    # 0.95 + 0.1 = 1.05 is clamped to 1.0: effective offset 0.05 -> 26.0206 dB.
    out = psnr(_const(1.05), _const(0.95))
    assert out[0].item() == pytest.approx(20 * math.log10(1 / 0.05), abs=1e-9)
    # a prediction entirely above 1 against a white target counts as perfect
    assert torch.isinf(psnr(_const(1.2), _const(1.0))).all()


def test_psnr_per_image_values():
    hr = _const(0.5, n=2)
    sr = hr.clone()
    sr[0] += 0.1  # MSE 0.01 -> 20 dB
    sr[1] += 0.01  # MSE 0.0001 -> 40 dB
    out = psnr(sr, hr)
    assert out.tolist() == pytest.approx([20.0, 40.0], abs=1e-9)


# --- Y-PSNR ---------------------------------------------------------------------------------


def test_y_psnr_grey_offset_equals_rgb_psnr():
    # The Y weights sum to 1, so a grey offset d moves Y by d.
    out = y_psnr(_const(0.6), _const(0.5))
    assert torch.allclose(out, torch.full((2,), 20.0, dtype=torch.float64), atol=1e-9)


def test_y_psnr_ignores_luma_preserving_colour_change():
    hr = _const(0.5)
    sr = hr.clone()
    sr[:, 0] += 0.1  # R up
    sr[:, 1] -= 0.1 * 0.299 / 0.587  # G down so that 0.299 dR + 0.587 dG = 0
    assert psnr(sr, hr)[0].item() < 30.0
    assert y_psnr(sr, hr)[0].item() > 150.0  # only rounding error left in Y


# --- SSIM / MS-SSIM -------------------------------------------------------------------------


def test_ssim_identical_is_one(smooth_images):
    hr = smooth_images(2, size=64)
    out = ssim(hr.clone(), hr)
    assert out.shape == (2,) and out.dtype == torch.float64
    assert torch.allclose(out, torch.ones(2, dtype=torch.float64), atol=1e-12)


def test_ssim_clamps_and_is_below_one(smooth_images, degrade):
    hr = smooth_images(2, size=64)
    sr = degrade(hr)
    over = sr.clone()
    over[:, :, :8, :8] = 1.5  # clamped to 1 inside
    ref = sr.clone()
    ref[:, :, :8, :8] = 1.0
    assert torch.allclose(ssim(over, hr), ssim(ref, hr), atol=1e-12)
    assert (ssim(sr, hr) < 0.99).all()


@pytest.mark.parametrize(
    ("size", "kernel"),
    [
        (128, 7),
        (161, 11),
        (160, 9),
        (129, 9),
        (1024, 11),
        (97, 7),
        (96, 5),
        (65, 5),
        (64, 3),
        (33, 3),
    ],
)
def test_ms_ssim_kernel_for(size, kernel):
    assert ms_ssim_kernel_for(size) == kernel
    assert (kernel - 1) * 16 + 1 <= size  # piq's 5-scale minimum size holds


@pytest.mark.parametrize("size", [32, 16, 0])
def test_ms_ssim_kernel_for_too_small(size):
    with pytest.raises(ValueError, match="at least 33 px"):
        ms_ssim_kernel_for(size)


def test_ms_ssim_default_kernel_at_128_is_7(smooth_images, degrade):
    piq = pytest.importorskip("piq", reason="piq is the MS-SSIM oracle")
    hr = smooth_images(2)
    sr = degrade(hr)
    out = ms_ssim(sr, hr)
    expected = piq.multi_scale_ssim(sr, hr, kernel_size=7, data_range=1.0, reduction="none")
    other = piq.multi_scale_ssim(sr, hr, kernel_size=5, data_range=1.0, reduction="none")
    assert torch.allclose(out, expected, atol=1e-12)
    assert not torch.allclose(out, other, atol=1e-6)  # the window does change the value
    assert torch.allclose(ms_ssim(hr.clone(), hr), torch.ones(2, dtype=torch.float64), atol=1e-12)


def test_ms_ssim_kernel_11_refused_at_128(smooth_images):
    hr = smooth_images(1)
    with pytest.raises(ValueError, match="at least 161 px"):
        ms_ssim(hr, hr, kernel_size=11)
    with pytest.raises(ValueError, match="odd"):
        ms_ssim(hr, hr, kernel_size=6)


# --- input validation -----------------------------------------------------------------------


@pytest.mark.parametrize("fn", [psnr, y_psnr, ssim, ms_ssim])
def test_shape_mismatch_raises(fn):
    with pytest.raises(ValueError, match="same shape"):
        fn(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 32))


@pytest.mark.parametrize("fn", [psnr, y_psnr, ssim, ms_ssim])
def test_3d_tensor_raises(fn):
    with pytest.raises(ValueError, match=r"4-D tensor \[B, C, H, W\], got 3-D"):
        fn(torch.rand(3, 64, 64), torch.rand(3, 64, 64))


def test_other_bad_inputs_raise():
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="floating-point"):
        psnr((x * 255).to(torch.uint8), (x * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="3-channel"):
        psnr(x[:, :1], x[:, :1])
    with pytest.raises(ValueError, match=r"hr must have values in \[0, 1\]"):
        psnr(x, x * 2 - 1)  # target left in [-1, 1]
    with pytest.raises(ValueError, match="NaN or infinite"):
        bad = x.clone()
        bad[0, 0, 0, 0] = float("nan")
        psnr(bad, x)
    with pytest.raises(ValueError, match="torch.Tensor"):
        psnr(x.numpy(), x)
    with pytest.raises(ValueError, match="data_range"):
        psnr(x, x, data_range=0)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(x[..., :8, :8], x[..., :8, :8])
