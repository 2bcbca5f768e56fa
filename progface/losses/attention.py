"""Facial attention loss (paper Eq. 1): landmark-weighted L1 between SR and HR.

``M*`` is the channel-wise max of the HR heatmaps after per-image min-max normalisation
(``[B,1,h,w]`` in [0, 1], resized to the image size when the source's heatmaps are smaller);
the loss is ``mean over B x C x H x W of M* * |SR - HR|``.
"""

from __future__ import annotations

from typing import Any

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
    """``forward(sr, hr, batch=None, real_heatmaps=None)``: :func:`attention_loss` with M* from
    the source's heatmaps of ``hr`` (or the given ones, or the batch's ``heatmaps``). The
    registered loss ``attention``.

    Args:
        source: a heatmap source (frozen here).
        input_range: value range of ``sr``/``hr`` (the generator's [-1, 1] by default).
        landmarks: take M* from the batch's labelled ``landmarks`` instead (Gaussians rendered
            at the target size; 128-px coordinates): exact where a source is weak, and free.
    """

    def __init__(self, source: Any, input_range=(-1.0, 1.0), landmarks: bool = False) -> None:
        super().__init__(source, input_range)
        self.landmarks = None
        if landmarks:
            from progface.landmarks.sources import LandmarkHeatmaps

            self.landmarks = LandmarkHeatmaps()

    def forward(
        self,
        sr: torch.Tensor,
        hr: torch.Tensor,
        batch=None,
        real_heatmaps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.landmarks is not None and real_heatmaps is None:
            heatmaps = self.labelled_heatmaps(batch, hr.shape[-1])
        else:
            heatmaps = self.target_heatmaps(hr, batch, real_heatmaps)
        return attention_loss(sr.float(), hr, attention_map(heatmaps.float()))

    def labelled_heatmaps(self, batch, size: int) -> torch.Tensor:
        """Gaussians at the batch's labelled landmarks (128-px coordinates), at ``size``."""
        from progface.landmarks.heatmaps import rescale_points

        points = batch.get("landmarks") if batch is not None else None
        if points is None:
            raise ValueError(
                "attention from labelled landmarks needs labelled training faces: set "
                "data.landmarks = true (a landmarks68.csv or .pts files beside the images)"
            )
        points = rescale_points(points.float(), batch["hr"].shape[-1], size)
        return self.landmarks.heatmaps_from_points(points, size)
