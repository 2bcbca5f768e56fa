"""Turn a trained SR network into what ``bench`` and ``upscale`` call: LR [0, 1] -> SR [0, 1]."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn

from progface.weights import WeightsError
from progface.weights.generators import build_from_weights

__all__ = ["SuperResolver", "load_trained_method"]


class SuperResolver(nn.Module):
    """Wraps a network with a ``super_resolve(lr)`` method (VDSR, URDGN, FSRNet, ...).

    Shape:
        ``[B,3,16,16]`` in [0, 1] -> ``[B,3,128,128]``, nominally in [0, 1] (not clamped).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        if not callable(getattr(net, "super_resolve", None)):
            raise TypeError(f"{type(net).__name__} has no super_resolve(lr) method")
        self.net = net

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if lr.ndim != 4 or lr.shape[1] != 3:
            raise ValueError(f"expected LR faces [B,3,H,W], got shape {tuple(lr.shape)}")
        return self.net.super_resolve(lr)


def load_trained_method(
    path: str | os.PathLike[str] | None,
    *,
    method: str,
    architecture: str,
    build: Callable[[dict], nn.Module],
    device: str = "cpu",
) -> SuperResolver:
    """Build and load the network in ``path`` for ``method``, in eval mode on ``device``.

    A file whose config names another method (e.g. FSRGAN weights passed to ``fsrnet``) is
    refused, so a table row never silently shows another method's network.
    """
    if path is None:
        raise WeightsError(
            f"method {method!r} needs trained weights: train them with `progface train --recipe "
            f"{method}` and pass --weights {method}=PATH"
        )
    net, config = build_from_weights(path, architecture, build)
    trained_as = config.get("method", method)
    if trained_as != method:
        raise WeightsError(f"{path}: holds {trained_as!r} weights, not {method!r} weights")
    return SuperResolver(net).to(device).eval()
