"""Learning-rate helpers the recipes share."""

from __future__ import annotations

import math

import torch

__all__ = ["cosine", "set_lr"]


def cosine(lr: float, lr_min: float, k: int, length: int) -> float:
    """Cosine decay from ``lr`` (``k = 0``) to ``lr_min`` (``k = length``)."""
    return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * k / length))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Give every parameter group of ``optimizer`` the learning rate ``lr``."""
    for group in optimizer.param_groups:
        group["lr"] = lr
