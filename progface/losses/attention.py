"""Facial attention loss (paper Eq. 1): landmark-weighted L1 between SR and HR.

``M*`` is the channel-wise max of the HR heatmaps after per-image min-max normalisation
(``[B,1,h,w]`` in [0, 1], resized to the image size when the source's heatmaps are smaller);
the loss is ``mean over B x C x H x W of M* * |SR - HR|``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from progface.losses.heatmap import _FrozenSource, normalize_heatmaps


def attention_map(real_heatmaps: torch.Tensor) -> torch.Tensor:
    """``[B,N,h,w]`` HR heatmaps -> ``[B,1,h,w]`` attention in [0, 1]."""
    return normalize_heatmaps(real_heatmaps).amax(dim=1, keepdim=True)


def attention_loss(sr: torch.Tensor, hr: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """``mean(M* * |sr - hr|)`` with ``attention`` = M* ([B,1,h,w], bilinearly resized to the
    image size if needed; treated as a constant)."""
    if sr.shape != hr.shape:
        raise ValueError(f"SR and HR shapes differ: {tuple(sr.shape)} vs {tuple(hr.shape)}")
    if attention.ndim != 4 or attention.shape[1] != 1 or attention.shape[0] != sr.shape[0]:
        raise ValueError(f"attention must be [B,1,h,w], got {tuple(attention.shape)}")
    if attention.shape[-2:] != sr.shape[-2:]:
        attention = F.interpolate(
            attention, size=sr.shape[-2:], mode="bilinear", align_corners=False
        )
    return (attention.detach() * (sr - hr).abs()).mean()


class AttentionLoss(_FrozenSource):
    """``forward(sr, hr, real_heatmaps=None)``: :func:`attention_loss` with M* from the source's
    heatmaps of ``hr`` (or the given ones).

    Args:
        source: a heatmap source (frozen here).
        input_range: value range of ``sr``/``hr`` (the generator's [-1, 1] by default).
    """

    def forward(
        self, sr: torch.Tensor, hr: torch.Tensor, real_heatmaps: torch.Tensor | None = None
    ) -> torch.Tensor:
        if real_heatmaps is None:
            real_heatmaps = self.real_heatmaps(hr)
        return attention_loss(sr, hr, attention_map(real_heatmaps))
