"""Landmark coordinates <-> heatmaps, as functional ops with ``nn.Module`` wrappers.

Convention: coordinates are (x, y) in 0-based pixel units of the map they refer to, with pixel
centres on integers (pixel ``i`` covers ``[i - 0.5, i + 0.5)``). This is the convention of the
face data's ``landmarks68.csv``. :func:`rescale_points` moves points between resolutions under
this convention (the one ``interpolate(align_corners=False)`` uses).

Decoding follows face-alignment's rule: take each channel's argmax, then move a quarter pixel
towards the higher of the two neighbours along x and along y (when both neighbours exist).
face-alignment reports ``argmax + 0.5 ± 0.25`` because it puts pixel centres on half-integers;
:func:`decode_heatmaps` returns ``argmax ± 0.25``, the same point in this module's convention.
Rendering a Gaussian and decoding it recovers the point within 0.25 px per axis.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = [
    "HeatmapDecoder",
    "HeatmapRenderer",
    "decode_heatmaps",
    "render_heatmaps",
    "rescale_points",
]


def _check_points(points: Tensor) -> None:
    if not isinstance(points, Tensor):
        raise TypeError(f"points must be a Tensor, got {type(points).__name__}")
    if points.dim() != 3 or points.shape[-1] != 2:
        raise ValueError(f"points must have shape [B, N, 2], got {list(points.shape)}")
    if not points.is_floating_point():
        raise ValueError(f"points must be floating point, got {points.dtype}")


def _check_heatmaps(heatmaps: Tensor) -> None:
    if not isinstance(heatmaps, Tensor):
        raise TypeError(f"heatmaps must be a Tensor, got {type(heatmaps).__name__}")
    if heatmaps.dim() != 4:
        raise ValueError(f"heatmaps must have shape [B, N, H, W], got {list(heatmaps.shape)}")
    if heatmaps.shape[-1] < 1 or heatmaps.shape[-2] < 1:
        raise ValueError(f"heatmaps must be at least 1x1, got {list(heatmaps.shape)}")


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else size
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {size}")
    return int(h), int(w)


def rescale_points(
    points: Tensor, from_size: int | tuple[int, int], to_size: int | tuple[int, int]
) -> Tensor:
    """Map points from an image of ``from_size`` (H, W) to the same image resized to ``to_size``.

    ``x' = (x + 0.5) * W' / W - 0.5`` (and likewise for y): pixel centres stay pixel centres.
    """
    _check_points(points)
    (fh, fw), (th, tw) = _pair(from_size), _pair(to_size)
    scale = points.new_tensor([tw / fw, th / fh])
    return (points + 0.5) * scale - 0.5


def render_heatmaps(
    points: Tensor, size: int | tuple[int, int], sigma: float = 1.0, peak: float = 1.0
) -> Tensor:
    """Render one unnormalised Gaussian per landmark.

    Args:
        points: ``[B, N, 2]`` (x, y) in pixel units of the output map (centres on integers).
        size: output ``H`` (and ``W``), or ``(H, W)``.
        sigma: standard deviation in output pixels.
        peak: value at the Gaussian's centre (1, as FAN's heatmaps).

    Returns:
        ``[B, N, H, W]``, ``peak * exp(-d^2 / (2 sigma^2))`` with ``d`` the distance to the point.
        Points off the map give a partial (or empty) Gaussian.
    """
    _check_points(points)
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    h, w = _pair(size)
    ys = torch.arange(h, dtype=points.dtype, device=points.device)
    xs = torch.arange(w, dtype=points.dtype, device=points.device)
    dx2 = (xs.view(1, 1, 1, w) - points[..., 0, None, None]) ** 2  # [B, N, 1, W]
    dy2 = (ys.view(1, 1, h, 1) - points[..., 1, None, None]) ** 2  # [B, N, H, 1]
    # exp(-(dx2 + dy2)) factorises, so two small exps replace one [B, N, H, W] exp
    scale = -1.0 / (2.0 * sigma * sigma)
    return peak * torch.exp(dy2 * scale) * torch.exp(dx2 * scale)


def decode_heatmaps(heatmaps: Tensor, return_scores: bool = False):
    """Landmark coordinates from heatmaps: argmax plus face-alignment's quarter-pixel shift.

    Args:
        heatmaps: ``[B, N, H, W]``, any real values (the peak is what counts).
        return_scores: also return each channel's maximum ``[B, N]``.

    Returns:
        ``[B, N, 2]`` float (x, y) in pixel units of the heatmap (centres on integers); with
        ``return_scores``, the tuple ``(points, scores)``.
    """
    _check_heatmaps(heatmaps)
    b, n, h, w = heatmaps.shape
    flat = heatmaps.detach().reshape(b, n, h * w)
    scores, index = flat.max(dim=-1)
    y = torch.div(index, w, rounding_mode="floor")
    x = index - y * w

    def shift(lo: Tensor, hi: Tensor, inside: Tensor) -> Tensor:
        diff = flat.gather(-1, hi.unsqueeze(-1)) - flat.gather(-1, lo.unsqueeze(-1))
        step = 0.25 * torch.sign(diff.squeeze(-1))
        return torch.where(inside, step, torch.zeros_like(step))

    # neighbour indices, clamped to the map; `inside` masks border peaks (no shift there)
    left = (index - 1).clamp(min=0)
    right = (index + 1).clamp(max=h * w - 1)
    up = (index - w).clamp(min=0)
    down = (index + w).clamp(max=h * w - 1)
    dx = shift(left, right, (x > 0) & (x < w - 1))
    dy = shift(up, down, (y > 0) & (y < h - 1))
    points = torch.stack((x.to(flat.dtype) + dx, y.to(flat.dtype) + dy), dim=-1)
    if not points.is_floating_point():
        points = points.float()
    return (points, scores) if return_scores else points


class HeatmapRenderer(nn.Module):
    """Module form of :func:`render_heatmaps`: ``points [B, N, 2] -> [B, N, H, W]``."""

    def __init__(self, size: int | tuple[int, int], *, sigma: float = 1.0, peak: float = 1.0):
        super().__init__()
        self.size = _pair(size)
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.sigma = float(sigma)
        self.peak = float(peak)

    def forward(self, points: Tensor) -> Tensor:
        """points ``[B, N, 2]`` (x, y) in output pixels -> heatmaps ``[B, N, H, W]`` in [0, peak]."""
        return render_heatmaps(points, self.size, self.sigma, self.peak)

    def extra_repr(self) -> str:
        return f"size={self.size}, sigma={self.sigma}, peak={self.peak}"


class HeatmapDecoder(nn.Module):
    """Module form of :func:`decode_heatmaps`: ``[B, N, H, W] -> points [B, N, 2]``."""

    def forward(self, heatmaps: Tensor) -> Tensor:
        """heatmaps ``[B, N, H, W]`` -> points ``[B, N, 2]`` (x, y) in heatmap pixels."""
        return decode_heatmaps(heatmaps)
