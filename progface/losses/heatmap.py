"""Heatmap loss (Bulat & Tzimiropoulos 2018; paper Eq. 5) and the heatmap-source helpers.

A heatmap source is any object with ``num_landmarks`` and ``__call__(images [B,3,H,W] in
[0, 1]) -> [B,N,h,w]`` (see ``progface.landmarks``). The losses freeze it: eval mode and no
parameter gradients, while gradients still flow into the SR image through it. (The authors'
code left the distilled FAN in train mode and let it accumulate gradients; not reproduced.)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def check_source(source: Any) -> Any:
    """Validate the heatmap-source API and freeze an ``nn.Module`` source (eval, no grads)."""
    if not callable(source) or not isinstance(getattr(source, "num_landmarks", None), int):
        raise TypeError(
            "a heatmap source needs an int `num_landmarks` and __call__(images [B,3,H,W] in "
            f"[0,1]) -> [B,N,h,w]; got {type(source).__name__}"
        )
    if isinstance(source, nn.Module):
        source.eval()
        source.requires_grad_(False)
    return source


def resolve_source(given: Any, name: str, options: dict, device: Any) -> tuple[Any, str]:
    """The heatmap source a recipe's losses use: ``given`` (an object passed to the recipe) or
    the registered source ``name`` built with ``options``; on ``device`` and frozen
    (:func:`check_source`). Returns ``(source, the name recorded with the run's weights)``."""
    import torch

    if given is None:
        from progface import plugins

        spec = plugins.get("heatmap_sources", name)
        given, label = spec.build(**options), spec.name
    else:
        label = type(given).__name__
    if isinstance(given, torch.nn.Module):
        given = given.to(device)
    return check_source(given), label


def to_unit(images: torch.Tensor, input_range: tuple[float, float]) -> torch.Tensor:
    """Map images from ``input_range`` to [0, 1] (the sources' and VGG's input range)."""
    lo, hi = input_range
    return images if (lo, hi) == (0, 1) else (images - lo) / (hi - lo)


def heatmaps_of(source: Any, images: torch.Tensor, input_range=(-1.0, 1.0)) -> torch.Tensor:
    """``source`` run on ``images`` (given in ``input_range``), checked to be [B,N,h,w]."""
    out = source(to_unit(images, input_range))
    n = source.num_landmarks
    if out.ndim != 4 or out.shape[0] != images.shape[0] or out.shape[1] != n:
        raise ValueError(
            f"heatmap source returned shape {tuple(out.shape)}; expected [{images.shape[0]},{n},h,w]"
        )
    return out


def normalize_heatmaps(heatmaps: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-image min-max over all landmarks and pixels together -> [0, 1]."""
    flat = heatmaps.flatten(1)
    lo = flat.min(dim=1).values.view(-1, 1, 1, 1)
    hi = flat.max(dim=1).values.view(-1, 1, 1, 1)
    return (heatmaps - lo) / (hi - lo).clamp_min(eps)


def heatmap_loss(fake_heatmaps: torch.Tensor, real_heatmaps: torch.Tensor) -> torch.Tensor:
    """MSE between the min-max normalised heatmaps of the SR and the HR image.

    Each side is normalised with its own min and max (the authors' code used the real min for
    the fake side by mistake).
    """
    if fake_heatmaps.shape != real_heatmaps.shape:
        raise ValueError(
            f"heatmap shapes differ: {tuple(fake_heatmaps.shape)} vs {tuple(real_heatmaps.shape)}"
        )
    return F.mse_loss(normalize_heatmaps(fake_heatmaps), normalize_heatmaps(real_heatmaps))


class _FrozenSource(nn.Module):
    """Holds a heatmap source and keeps it frozen whatever ``train()`` is called with."""

    def __init__(self, source: Any, input_range: tuple[float, float] = (-1.0, 1.0)) -> None:
        super().__init__()
        self.source = check_source(source)
        self.input_range = tuple(input_range)

    def train(self, mode: bool = True):
        super().train(mode)
        if isinstance(self.source, nn.Module):
            self.source.eval()
        return self

    def real_heatmaps(self, hr: torch.Tensor) -> torch.Tensor:
        """Heatmaps of the targets: no graph (they are constants of the loss; cacheable)."""
        with torch.no_grad():
            return heatmaps_of(self.source, hr, self.input_range)

    def target_heatmaps(self, hr, batch, real_heatmaps):
        """The given heatmaps, else the batch's shared ``heatmaps``, else the source's of hr."""
        if real_heatmaps is not None:
            return real_heatmaps
        if batch is not None and "heatmaps" in batch:
            return batch["heatmaps"]
        if hr is None:
            raise ValueError(f"{type(self).__name__} needs hr or real_heatmaps")
        return self.real_heatmaps(hr)


class HeatmapLoss(_FrozenSource):
    """``forward(sr, hr=None, batch=None, real_heatmaps=None)``: :func:`heatmap_loss` of the
    source's heatmaps of ``sr`` (gradients flow into ``sr``) and of ``hr`` (or the given ones,
    or the batch's ``heatmaps``). The registered loss ``heatmap``.

    Args:
        source: a heatmap source (frozen here).
        input_range: value range of ``sr``/``hr`` (the generator's [-1, 1] by default).
    """

    def forward(
        self,
        sr: torch.Tensor,
        hr: torch.Tensor | None = None,
        batch=None,
        real_heatmaps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        real = self.target_heatmaps(hr, batch, real_heatmaps)
        fake = heatmaps_of(self.source, sr, self.input_range)
        return heatmap_loss(fake.float(), real.float())
