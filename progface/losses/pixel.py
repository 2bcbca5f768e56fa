"""Pixel loss: L1 (the authors' code) or MSE (the paper's Eq. 2) between SR and HR."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PIXEL_KINDS = ("l1", "mse")


def _check_pair(sr: torch.Tensor, hr: torch.Tensor) -> None:
    if sr.shape != hr.shape:
        raise ValueError(f"SR and HR shapes differ: {tuple(sr.shape)} vs {tuple(hr.shape)}")
    if sr.ndim != 4:
        raise ValueError(f"expected [B,C,H,W] images, got shape {tuple(sr.shape)}")


def pixel_loss(sr: torch.Tensor, hr: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Mean absolute (``l1``) or squared (``mse``) error over every element.

    Args:
        sr, hr: ``[B,C,H,W]`` in the same value range (the generator's [-1, 1] in training).
        kind: ``"l1"`` or ``"mse"``.
    """
    _check_pair(sr, hr)
    if kind == "l1":
        return F.l1_loss(sr, hr)
    if kind == "mse":
        return F.mse_loss(sr, hr)
    raise ValueError(f"pixel loss kind must be one of {PIXEL_KINDS}, got {kind!r}")


class PixelLoss(nn.Module):
    """Module form of :func:`pixel_loss`; ``forward(sr, hr, batch=None)`` (the registered loss
    ``pixel``; ``batch`` is not used)."""

    def __init__(self, kind: str = "l1") -> None:
        super().__init__()
        if kind not in PIXEL_KINDS:
            raise ValueError(f"pixel loss kind must be one of {PIXEL_KINDS}, got {kind!r}")
        self.kind = kind

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, batch=None) -> torch.Tensor:
        return pixel_loss(sr, hr, self.kind)
