"""Tests of the evaluation protocols (standard and pfsr) and the factory."""

from __future__ import annotations

import math

import pytest
import torch

from progface.metrics.pfsr_protocol import PfsrProtocol, pfsr_msssim, pfsr_ssim
from progface.metrics.protocols import (
    PSNR_CAP_DB,
    EvalProtocol,
    StandardProtocol,
    make_protocol,
)


def _two_offset_images(size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Image 0 has MSE 0.01 (20 dB), image 1 has MSE 0.0001 (40 dB)."""
    hr = torch.full((2, 3, size, size), 0.5, dtype=torch.float64)
    sr = hr.clone()
    sr[0] += 0.1
    sr[1] += 0.01
    return sr, hr


# --- factory --------------------------------------------------------------------------------


def test_make_protocol_names():
    std = make_protocol("standard")
    pfsr = make_protocol("pfsr", batch_size=8)
    assert isinstance(std, StandardProtocol) and isinstance(pfsr, PfsrProtocol)
    assert pfsr.batch_size == 8
    assert isinstance(std, EvalProtocol) and isinstance(pfsr, EvalProtocol)
    with pytest.raises(
        ValueError, match=r"unknown evaluation protocol 'paper'.*'standard', 'pfsr'"
    ):
        make_protocol("paper")


def test_compute_before_update_raises():
    for name in ("standard", "pfsr"):
        with pytest.raises(ValueError, match="no images"):
            make_protocol(name).compute()


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        PfsrProtocol(batch_size=0)
    with pytest.raises(ValueError, match="ms_ssim_kernel"):
        StandardProtocol(ms_ssim_kernel=8)
    with pytest.raises(ValueError, match="psnr_cap"):
        StandardProtocol(psnr_cap=float("inf"))


# --- per-image versus per-batch PSNR -----------------------------------------------------------


def test_per_image_and_per_batch_psnr_differ_by_computed_amount():
    sr, hr = _two_offset_images()
    std = make_protocol("standard")
    pfsr = make_protocol("pfsr")
    std.update(sr, hr)
    pfsr.update(sr, hr)
    assert std.compute()["psnr"] == pytest.approx(30.0, abs=1e-9)  # (20 + 40) / 2
    batch_psnr = 10 * math.log10(1 / ((0.01 + 0.0001) / 2))
    assert batch_psnr == pytest.approx(22.9671, abs=1e-4)
    assert pfsr.compute()["psnr"] == pytest.approx(batch_psnr, abs=1e-9)
    assert [r["psnr"] for r in pfsr.per_image()] == pytest.approx([20.0, 40.0], abs=1e-9)


# --- standard protocol -----------------------------------------------------------------------


def test_standard_identical_image_capped_in_mean_only():
    sr, hr = _two_offset_images(size=128)
    sr[1] = hr[1]  # image 1 is perfect: PSNR inf
    std = StandardProtocol()
    std.update(sr, hr)
    rows = std.per_image()
    assert rows[0]["psnr"] == pytest.approx(20.0, abs=1e-9)
    assert math.isinf(rows[1]["psnr"])
    result = std.compute()
    assert result["psnr"] == pytest.approx((20.0 + PSNR_CAP_DB) / 2, abs=1e-9)
    assert result["psnr_capped"] == 1
    assert all(math.isfinite(result[k]) for k in ("psnr", "ssim", "ms_ssim"))


def test_standard_result_keys_and_kernel(smooth_images, degrade):
    hr = smooth_images(3)
    sr = degrade(hr)
    std = StandardProtocol()
    std.update(sr, hr)
    result = std.compute()
    assert result["protocol"] == "standard"
    assert result["images"] == 3
    assert result["ms_ssim_kernel"] == 7
    rows = std.per_image()
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert set(rows[0]) == {"index", "psnr", "ssim", "ms_ssim"}
    for key in ("psnr", "ssim", "ms_ssim"):
        assert result[key] == pytest.approx(sum(r[key] for r in rows) / 3, abs=1e-12)
    # the window chosen at the first update is kept: 64-px images are too small for window 7
    with pytest.raises(ValueError, match="at least 97 px"):
        std.update(sr[..., :64, :64], hr[..., :64, :64])
    std.reset()
    std.update(sr[..., :64, :64], hr[..., :64, :64])
    assert std.compute()["ms_ssim_kernel"] == 3


def test_standard_independent_of_batching(smooth_images, degrade):
    hr = smooth_images(5, size=64)
    sr = degrade(hr)
    whole = StandardProtocol()
    whole.update(sr, hr)
    split = StandardProtocol()
    split.update(sr[:2], hr[:2])
    split.update(sr[2:], hr[2:])
    assert split.compute() == pytest.approx(whole.compute(), abs=1e-12)


def test_protocols_reject_bad_input():
    x = torch.rand(2, 3, 128, 128)
    for name in ("standard", "pfsr"):
        proto = make_protocol(name)
        with pytest.raises(ValueError, match="same shape"):
            proto.update(x, x[:1])
        with pytest.raises(ValueError, match="4-D"):
            proto.update(x[0], x[0])
        with pytest.raises(ValueError, match=r"hr must have values in \[0, 1\]"):
            proto.update(x, x * 255)


# --- pfsr protocol ---------------------------------------------------------------------------


def _metrics_of(sr: torch.Tensor, hr: torch.Tensor) -> tuple[float, float, float]:
    mse = float((sr - hr).pow(2).mean())
    return 10 * math.log10(1 / mse), float(pfsr_ssim(sr, hr)), float(pfsr_msssim(sr, hr))


def test_pfsr_regroups_stream_into_batches_of_16(smooth_images, degrade):
    hr = smooth_images(20, size=32)
    sr = degrade(hr, noise=0.1)
    whole = PfsrProtocol()
    whole.update(sr, hr)
    by_three = PfsrProtocol()
    for start in range(0, 20, 3):
        by_three.update(sr[start : start + 3], hr[start : start + 3])
    a, b = whole.compute(), by_three.compute()
    assert a["images"] == b["images"] == 20
    assert a["batches"] == b["batches"] == 2
    assert a["protocol"] == "pfsr" and a["batch_size"] == 16
    assert b == pytest.approx(a, abs=1e-12)
    # = equally weighted mean of the batch of 16 and the batch of 4
    first, last = _metrics_of(sr[:16], hr[:16]), _metrics_of(sr[16:], hr[16:])
    for i, key in enumerate(("psnr", "ssim", "ms_ssim")):
        assert a[key] == pytest.approx((first[i] + last[i]) / 2, abs=1e-12)
    # not the same as one batch of 20
    one_batch = _metrics_of(sr, hr)
    assert abs(a["psnr"] - one_batch[0]) > 1e-4
    assert [r["batch"] for r in by_three.per_image()] == [0] * 16 + [1] * 4


def test_pfsr_compute_keeps_partial_batch_pending(smooth_images, degrade):
    hr = smooth_images(20, size=32)
    sr = degrade(hr, noise=0.1)
    whole = PfsrProtocol()
    whole.update(sr, hr)
    stepwise = PfsrProtocol()
    stepwise.update(sr[:10], hr[:10])
    partial = stepwise.compute()
    assert partial["batches"] == 1 and partial["images"] == 10
    stepwise.update(sr[10:], hr[10:])
    assert stepwise.compute() == pytest.approx(whole.compute(), abs=1e-12)


def test_pfsr_does_not_clamp():
    # The prediction overshoots a white target by 0.1: 20 dB for pfsr, a perfect match
    # (capped PSNR) once clamped by the standard protocol.
    hr = torch.ones(1, 3, 64, 64, dtype=torch.float64)
    sr = hr + 0.1
    pfsr = PfsrProtocol()
    pfsr.update(sr, hr)
    assert pfsr.compute()["psnr"] == pytest.approx(20.0, abs=1e-9)
    std = StandardProtocol()
    std.update(sr, hr)
    assert std.compute()["psnr"] == PSNR_CAP_DB


def test_pfsr_rejects_size_change(smooth_images):
    proto = PfsrProtocol()
    hr = smooth_images(2, size=32)
    proto.update(hr, hr)
    with pytest.raises(ValueError, match="one size"):
        proto.update(hr[..., :16, :16], hr[..., :16, :16])
