"""Gaussian SSIM and contrast-structure maps (Wang et al. 2004), shared by both protocols.

With a normalised 1-D Gaussian window ``g``, the 2-D window ``w = g g^T`` and ``*`` a *valid*
(unpadded) filtering of each channel on its own:

* ``mu_x = w * x``, ``mu_y = w * y``;
* ``sigma_x^2 = w * x^2 - mu_x^2``, ``sigma_y^2 = w * y^2 - mu_y^2``,
  ``sigma_xy = w * (x y) - mu_x mu_y``;
* ``cs = (2 sigma_xy + c2) / (sigma_x^2 + sigma_y^2 + c2)`` (contrast-structure);
* ``ssim = (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1) * cs``.

The ``standard`` protocol's SSIM and MS-SSIM (:mod:`progface.metrics.quality`) and the authors'
ones (:mod:`progface.metrics.pfsr_protocol`) are built on :func:`ssim_maps`; they differ in the
window, the constants, the pooling between scales and how the maps are averaged.
"""

from __future__ import annotations

import torch

__all__ = ["gaussian_filter_valid", "gaussian_window_1d", "ssim_maps"]


def gaussian_window_1d(window_size: int, sigma: float = 1.5) -> torch.Tensor:
    """1-D Gaussian window, normalised to sum 1.

    ``g[x] = exp(-(x - window_size // 2)**2 / (2 sigma**2))`` for ``x in range(window_size)``.
    For an odd size it is symmetric and ``outer(g, g)`` is the usual normalised 2-D Gaussian
    window (piq's ``gaussian_filter``). For an even size (the authors' code uses 8) the peak sits
    at index ``window_size // 2`` (index 4 of 8), one to the right of the geometric centre, so the
    window is not symmetric.

    Args:
        window_size: Number of taps, at least 1.
        sigma: Standard deviation in pixels.

    Returns:
        float64 tensor ``[window_size]`` summing to 1.
    """
    if window_size < 1:
        raise ValueError(f"window_size must be at least 1, got {window_size}")
    x = torch.arange(window_size, dtype=torch.float64) - window_size // 2
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def gaussian_filter_valid(t: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Valid filtering of each channel by the separable window ``outer(window, window)``.

    Two 1-D passes, down the rows then along the columns, as weighted sums of shifted views: the
    2-D result to rounding, with ``2 k`` instead of ``k**2`` multiply-adds per value, and on CPU
    several times faster than a grouped ``conv2d`` in float64 (which has no fast kernel).

    Args:
        t: Images ``[B, C, H, W]``, floating point.
        window: 1-D window ``[k]`` with ``k <= H, W``; its taps are used as Python floats, so
            the arithmetic runs in ``t``'s dtype.

    Returns:
        Tensor ``[B, C, H - k + 1, W - k + 1]`` of ``t``'s dtype and device. Element ``(i, j)``
        is ``sum_{a, b} window[a] window[b] t[..., i + a, j + b]`` (a correlation: the window is
        not flipped, which matters only for an asymmetric, even-sized window).
    """
    taps = [float(v) for v in window.reshape(-1).tolist()]
    k = len(taps)
    height, width = t.shape[-2] - k + 1, t.shape[-1] - k + 1
    if height < 1 or width < 1:
        raise ValueError(f"window of {k} taps is larger than the images {list(t.shape[-2:])}")
    rows = t[..., 0:height, :] * taps[0]
    for a in range(1, k):
        rows.add_(t[..., a : a + height, :], alpha=taps[a])
    out = rows[..., 0:width] * taps[0]
    for b in range(1, k):
        out.add_(rows[..., b : b + width], alpha=taps[b])
    return out


def ssim_maps(
    x: torch.Tensor, y: torch.Tensor, window: torch.Tensor, c1: float, c2: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM map and contrast-structure (cs) map of two image batches (see the module docstring).

    Args:
        x: Images ``[B, C, H, W]``, floating point; the maps are computed in its dtype.
        y: Images ``[B, C, H, W]``, same dtype and device as ``x``.
        window: 1-D window ``[k]``, ``k <= H, W`` (e.g. :func:`gaussian_window_1d`).
        c1: Luminance constant, ``(K1 L)**2`` for a data range ``L``.
        c2: Contrast constant, ``(K2 L)**2``.

    Returns:
        ``(ssim_map, cs_map)``, each ``[B, C, H - k + 1, W - k + 1]``. SSIM lies in ``[-1, 1]``
        and is 1 where ``x`` and ``y`` agree over the whole window.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(
            f"ssim_maps: x and y must be [B, C, H, W] of one shape, got {list(x.shape)} "
            f"and {list(y.shape)}"
        )
    mu_x = gaussian_filter_valid(x, window)
    mu_y = gaussian_filter_valid(y, window)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    sigma_xx = gaussian_filter_valid(x * x, window) - mu_xx
    sigma_yy = gaussian_filter_valid(y * y, window) - mu_yy
    sigma_xy = gaussian_filter_valid(x * y, window) - mu_xy
    cs_map = (2.0 * sigma_xy + c2) / (sigma_xx + sigma_yy + c2)
    ssim_map = (2.0 * mu_xy + c1) / (mu_xx + mu_yy + c1) * cs_map
    return ssim_map, cs_map
