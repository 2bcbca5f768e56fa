"""A spatial prior over where each landmark lies on an aligned face.

The distilled FAN sees 13x13 px: locally, one stretch of jaw looks like another and an eyebrow
like a hairline, so its raw heatmaps carry false peaks far from the face part (on 300-W-labelled
Helen faces most of its error is such gross misses, a third of the jaw points at 128 px). On
aligned faces, which are all the SR networks ever see, each landmark stays within a few pixels
of its mean position. :class:`ShapePrior` multiplies each heatmap by a broad Gaussian around
that mean (``spread`` times the landmark's spread in the training labels): peaks where the
landmark can be are kept, peaks where it cannot be are suppressed, and a landmark the network
does not see at all falls back to its mean position. The prior has no learned parameters; it is
stored, as plain numbers, in the config of the weight file it was fitted with.

Points are (x, y) in pixels with centres on integers, in a square frame of ``frame`` px.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from progface.landmarks.heatmaps import rescale_points

__all__ = ["ShapePrior"]


@dataclass(frozen=True)
class ShapePrior:
    """Per-landmark Gaussian prior: ``mean`` ``[N, 2]`` and per-axis ``std`` ``[N]`` in px of a
    ``frame``-px aligned face; the Gaussian's sigma is ``spread * std``."""

    mean: Tensor
    std: Tensor
    frame: int = 128
    spread: float = 2.5
    floor: float = 1e-3  # added to the rectified heatmap: an unseen landmark -> its mean

    def __post_init__(self) -> None:
        n = self.mean.shape[0]
        if self.mean.shape != (n, 2) or self.std.shape != (n,):
            raise ValueError(
                f"shape prior needs mean [N, 2] and std [N], got {list(self.mean.shape)} and "
                f"{list(self.std.shape)}"
            )
        if self.spread <= 0 or bool((self.std <= 0).any()):
            raise ValueError("shape prior: spread and every std must be positive")

    @classmethod
    def from_points(cls, points: Tensor, frame: int = 128, spread: float = 2.5) -> ShapePrior:
        """Fit to labelled landmarks ``[M, N, 2]`` of aligned ``frame``-px faces."""
        if points.dim() != 3 or points.shape[-1] != 2 or points.shape[0] < 2:
            raise ValueError(f"need labelled points [M >= 2, N, 2], got {list(points.shape)}")
        points = points.double()
        std = points.std(dim=0).pow(2).mean(dim=-1).sqrt()  # per-axis RMS of the x and y stds
        return cls(points.mean(dim=0).float(), std.float(), frame, spread)

    def maps(self, size: int, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> Tensor:
        """The prior at ``size`` px: ``[N, size, size]``, 1 at each mean position."""
        centre = rescale_points(self.mean.unsqueeze(0), self.frame, size)[0].to(device, dtype)
        sigma = (self.spread * self.std * size / self.frame).to(device, dtype)
        axis = torch.arange(size, device=device, dtype=dtype)
        gx = (axis.view(1, -1) - centre[:, :1]) ** 2  # [N, size]
        gy = (axis.view(1, -1) - centre[:, 1:]) ** 2
        d2 = gy.unsqueeze(-1) + gx.unsqueeze(-2)  # [N, y, x]
        return torch.exp(-d2 / (2 * sigma.view(-1, 1, 1) ** 2))

    def apply(self, heatmaps: Tensor) -> Tensor:
        """``(relu(heatmaps) + floor) * prior``: heatmaps ``[B, N, S, S]`` of aligned faces."""
        b, n, h, w = heatmaps.shape
        if h != w:
            raise ValueError(f"shape prior: heatmaps must be square, got {h}x{w}")
        if n != self.mean.shape[0]:
            raise ValueError(f"shape prior has {self.mean.shape[0]} landmarks, heatmaps {n}")
        prior = self.maps(h, heatmaps.device, heatmaps.dtype)
        return (heatmaps.clamp(min=0) + self.floor) * prior

    def to_config(self) -> dict[str, Any]:
        """Plain numbers for a weight file's JSON config."""
        return {
            "mean": [[round(float(v), 3) for v in p] for p in self.mean],
            "std": [round(float(v), 3) for v in self.std],
            "frame": self.frame,
            "spread": self.spread,
            "floor": self.floor,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ShapePrior:
        return cls(
            torch.tensor(config["mean"], dtype=torch.float32),
            torch.tensor(config["std"], dtype=torch.float32),
            int(config.get("frame", 128)),
            float(config.get("spread", 2.5)),
            float(config.get("floor", 1e-3)),
        )
