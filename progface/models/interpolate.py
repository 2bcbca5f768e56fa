"""Classical upsampling as a module: the bilinear and bicubic baselines."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Interpolate(nn.Module):
    """Resize faces to ``size`` x ``size`` with PIL-compatible filters.

    ``antialias=True`` selects torch's PIL-compatible kernels (bicubic with a = -0.5, as PIL and
    MATLAB use, instead of torch's default a = -0.75). On the CPU the resize runs on 8-bit values,
    where torch reproduces PIL to 1/255 (its float path differs from PIL by up to 21/255 at
    the borders); inputs are rounded to 8 bits first, as an image file would be.

    Args:
        mode: ``"bilinear"`` or ``"bicubic"``.
        size: output side in pixels.

    Shape:
        ``[B,3,h,w]`` in [0, 1] -> ``[B,3,size,size]`` in [0, 1] (clamped: bicubic overshoots).
    """

    def __init__(self, *, mode: str, size: int = 128) -> None:
        super().__init__()
        if mode not in ("bilinear", "bicubic"):
            raise ValueError(f"mode must be 'bilinear' or 'bicubic', got {mode!r}")
        self.mode, self.size = mode, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected a [B,C,H,W] tensor, got shape {tuple(x.shape)}")
        size = (self.size, self.size)
        if x.is_cuda:
            out = F.interpolate(x, size=size, mode=self.mode, align_corners=False, antialias=True)
            return out.clamp(0, 1)
        x8 = (x.detach() * 255).round().clamp(0, 255).to(torch.uint8)
        out = F.interpolate(x8, size=size, mode=self.mode, align_corners=False, antialias=True)
        return out.to(x.dtype) / 255
