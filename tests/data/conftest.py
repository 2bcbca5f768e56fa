"""Small synthetic images for the data tests (``faces_dir`` comes from tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest


def smooth_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A random smooth RGB image with a few sharp edges, uint8 [H, W, 3]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    out = np.empty((height, width, 3))
    for c in range(3):
        fx, fy = rng.uniform(0.5, 6, size=2) * 2 * np.pi / np.array([width, height])
        phase = rng.uniform(0, 2 * np.pi, size=2)
        out[:, :, c] = 0.5 + 0.3 * np.sin(fx * x + phase[0]) * np.cos(fy * y + phase[1])
        cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
        out[:, :, c] += 0.15 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (0.02 * width * height))
    out[height // 3 : height // 2, width // 4 : width // 2] = rng.uniform(0, 1, size=3)  # edges
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


@pytest.fixture
def make_smooth():
    """The ``smooth_image(height, width, seed)`` factory."""
    return smooth_image
