"""Shared helpers for the metrics tests: deterministic, smooth synthetic images."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F


def _smooth_images(n: int, size: int = 128, seed: int = 0) -> torch.Tensor:
    """``n`` smooth random RGB images ``[n, 3, size, size]`` in [0, 1], float64."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(
        n, 3, max(size // 8, 2), max(size // 8, 2), generator=gen, dtype=torch.float64
    )
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def _degrade(hr: torch.Tensor, noise: float = 0.05, seed: int = 1) -> torch.Tensor:
    """A plausible SR output: the target plus Gaussian noise, clamped to [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    return (hr + noise * torch.randn(hr.shape, generator=gen, dtype=hr.dtype)).clamp(0.0, 1.0)


@pytest.fixture
def smooth_images():
    return _smooth_images


@pytest.fixture
def degrade():
    return _degrade
