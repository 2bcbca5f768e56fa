"""VDSR (Kim, Lee and Lee, CVPR 2016): a 20-layer residual CNN on a bicubic-upsampled image.

Layout: conv(C->64)+ReLU, 18 x [conv(64->64)+ReLU], conv(64->C); every conv is 3x3 with padding 1;
output = input + residual. In 8x face SR (FSRNet, Progressive Face SR) the 16x16 face is
bicubic-upsampled to 128x128 and VDSR is retrained on faces. ``in_chans=3`` works on RGB
(668,227 parameters with bias); ``in_chans=1`` is the paper's Y-channel network (665,921), whose
Cb and Cr come from the bicubic image.

State-dict keys follow the common PyTorch port (``input``, ``residual_layer.{i}.conv``,
``output``), so its bias-free Y checkpoints load with ``bias=False, in_chans=1``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from progface.models import configured

__all__ = ["VDSR", "VDSRConfig", "bicubic_upsample", "clip_gradients_adjustable"]


@dataclass(frozen=True)
class VDSRConfig:
    """Architecture of a VDSR network.

    Args:
        in_chans: 3 for RGB, 1 for the Y channel of YCbCr (the paper).
        depth: number of weight layers (20 in the paper).
        width: channels of the hidden layers.
        bias: conv biases (the paper's Caffe/MatConvNet nets have them).
        size: side of the upsampled input that :meth:`VDSR.super_resolve` feeds.
    """

    in_chans: int = 3
    depth: int = 20
    width: int = 64
    bias: bool = True
    size: int = 128


def bicubic_upsample(lr: torch.Tensor, size: int = 128) -> torch.Tensor:
    """PIL/MATLAB-style bicubic resize (a = -0.5) of ``[B,C,h,w]`` to ``[B,C,size,size]``.

    ``antialias=True`` selects torch's a = -0.5 kernel; it changes nothing else when upsampling.
    Not clamped: the overshoot is part of VDSR's input.
    """
    return F.interpolate(lr, size=(size, size), mode="bicubic", align_corners=False, antialias=True)


class _ConvReLU(nn.Module):
    def __init__(self, width: int, bias: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1, bias=bias)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


class VDSR(nn.Module):
    """The VDSR network; see the module docstring for the layout."""

    def __init__(self, config: VDSRConfig | None = None, **overrides: Any) -> None:
        """Build from ``config`` (default :class:`VDSRConfig`) with its fields overridden by
        keyword, e.g. ``VDSR(in_chans=1)``."""
        super().__init__()
        cfg = self.config = configured("VDSR", VDSRConfig, config, overrides)
        in_chans, depth, width, bias = cfg.in_chans, cfg.depth, cfg.width, cfg.bias
        if in_chans not in (1, 3):
            raise ValueError(f"in_chans must be 1 (Y) or 3 (RGB), got {in_chans}")
        if depth < 3:
            raise ValueError(f"depth must be at least 3, got {depth}")
        self.input = nn.Conv2d(in_chans, width, 3, padding=1, bias=bias)
        self.relu = nn.ReLU(inplace=True)
        self.residual_layer = nn.Sequential(*(_ConvReLU(width, bias) for _ in range(depth - 2)))
        self.output = nn.Conv2d(width, in_chans, 3, padding=1, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # He init as in the paper: normal(0, sqrt(2 / (k * k * out_channels))), zero biases.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                k = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / k))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Refine an upsampled image.

        Args:
            x: ``[B,C,H,W]`` upsampled image, C = ``in_chans``, values in [0, 1].

        Returns:
            ``[B,C,H,W]``: ``x`` plus the predicted residual (not clamped).
        """
        if x.ndim != 4 or x.shape[1] != self.config.in_chans:
            raise ValueError(
                f"VDSR expects [B,{self.config.in_chans},H,W], got shape {tuple(x.shape)}"
            )
        return x + self.output(self.residual_layer(self.relu(self.input(x))))

    def prepare(self, lr: torch.Tensor) -> torch.Tensor:
        """The network input for LR RGB faces ``[B,3,h,w]`` in [0, 1]: bicubic to ``size``, and
        for the Y network the full-range BT.601 Y channel."""
        up = bicubic_upsample(lr, self.config.size)
        return _rgb_to_ycbcr(up)[:, :1] if self.config.in_chans == 1 else up

    def prepare_target(self, hr: torch.Tensor) -> torch.Tensor:
        """The training target for HR RGB faces: themselves, or their Y channel (Y network)."""
        return _rgb_to_ycbcr(hr)[:, :1] if self.config.in_chans == 1 else hr

    def super_resolve(self, lr: torch.Tensor) -> torch.Tensor:
        """LR RGB faces ``[B,3,16,16]`` in [0, 1] -> SR RGB ``[B,3,128,128]`` in [0, 1]
        (not clamped). The Y network keeps the bicubic Cb and Cr."""
        up = bicubic_upsample(lr, self.config.size)
        if self.config.in_chans == 3:
            return self(up)
        ycbcr = _rgb_to_ycbcr(up)
        return _ycbcr_to_rgb(torch.cat([self(ycbcr[:, :1]), ycbcr[:, 1:]], dim=1))

    def config_dict(self) -> dict:
        return {"architecture": "vdsr", **asdict(self.config)}


# Full-range BT.601 (JPEG) YCbCr with its exact inverse, unclamped (kornia's inverse clamps to
# [0, 1] and rounds the coefficients, which would leak into VDSR-Y outputs).
_KR, _KB = 0.299, 0.114


def _rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    y = _KR * r + (1 - _KR - _KB) * g + _KB * b
    cb = (b - y) / (2 * (1 - _KB)) + 0.5
    cr = (r - y) / (2 * (1 - _KR)) + 0.5
    return torch.stack([y, cb, cr], 1)


def _ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    y, cb, cr = x.unbind(1)
    r = y + 2 * (1 - _KR) * (cr - 0.5)
    b = y + 2 * (1 - _KB) * (cb - 0.5)
    g = (y - _KR * r - _KB * b) / (1 - _KR - _KB)
    return torch.stack([r, g, b], 1)


@torch.no_grad()
def clip_gradients_adjustable(
    parameters: nn.Module | list[nn.Parameter], theta: float, lr: float
) -> None:
    """VDSR's adjustable gradient clipping: clamp every gradient element to [-theta/lr, theta/lr],
    so the largest step (lr x gradient) stays theta whatever the current learning rate."""
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")
    params = parameters.parameters() if isinstance(parameters, nn.Module) else parameters
    bound = theta / lr
    for p in params:
        if p.grad is not None:
            p.grad.clamp_(-bound, bound)
