"""The distilled face alignment network of Progressive Face SR (Kim et al., BMVC 2019).

A plain stack of five convolutions, 321,412 parameters, with the authors' ``fan_squeeze`` key
layout (``conv.*``, ``layers.{0..10}.*``) so that their checkpoint converts without renaming.
No stride and no pooling: the 68 heatmaps come out at the input resolution (64 px at SR step 2,
128 px at step 3), and the receptive field is 13x13 px.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from progface.models import configured

__all__ = ["FanDistilled", "FanDistilledConfig", "NUM_PARAMETERS"]

NUM_PARAMETERS = 321_412


@dataclass(frozen=True)
class FanDistilledConfig:
    """Architecture of :class:`FanDistilled` (defaults: the authors' network)."""

    num_landmarks: int = 68
    in_channels: int = 3
    stem_channels: int = 32
    stem_kernel: int = 5
    widths: tuple[int, ...] = (64, 128, 128)
    negative_slope: float = 0.01  # nn.LeakyReLU's default, as the authors used it


class FanDistilled(nn.Module):
    """conv5x5 (no activation) -> [conv3x3 -> BN -> LeakyReLU] x 3 -> conv3x3 -> LeakyReLU."""

    def __init__(self, config: FanDistilledConfig | None = None, **overrides: Any) -> None:
        """Build from ``config`` (default :class:`FanDistilledConfig`) with its fields overridden
        by keyword, e.g. ``FanDistilled(num_landmarks=5)``."""
        super().__init__()
        cfg = self.config = configured("FanDistilled", FanDistilledConfig, config, overrides)
        num_landmarks, in_channels, widths = cfg.num_landmarks, cfg.in_channels, cfg.widths
        stem_channels, stem_kernel = cfg.stem_channels, cfg.stem_kernel
        negative_slope = cfg.negative_slope
        self.num_landmarks = num_landmarks
        self.conv = nn.Conv2d(in_channels, stem_channels, stem_kernel, 1, stem_kernel // 2)
        layers: list[nn.Module] = []
        prev = stem_channels
        for width in widths:
            layers += [
                nn.Conv2d(prev, width, 3, 1, 1),
                nn.BatchNorm2d(width),
                nn.LeakyReLU(negative_slope),
            ]
            prev = width
        # the authors end with a LeakyReLU on the heatmaps too (small negative values remain)
        layers += [nn.Conv2d(prev, num_landmarks, 3, 1, 1), nn.LeakyReLU(negative_slope)]
        self.layers = nn.Sequential(*layers)
        self.feature_channels = prev

    def forward_features(self, x: Tensor) -> Tensor:
        """Faces ``[B, 3, H, W]`` in [0, 1] -> the last hidden features ``[B, 128, H, W]``
        (after the third BN + LeakyReLU; the hint layer for FitNets-style distillation)."""
        return self.layers[:-2](self.conv(x))

    def forward_head(self, features: Tensor) -> Tensor:
        """Hidden features ``[B, 128, H, W]`` -> heatmaps ``[B, N, H, W]``."""
        return self.layers[-2:](features)

    def forward(self, x: Tensor) -> Tensor:
        """Faces ``[B, 3, H, W]`` in [0, 1] -> heatmaps ``[B, N, H, W]`` at the input resolution.

        Heatmaps peak near 1 at each landmark and are about 0 elsewhere (slightly negative
        values pass the final LeakyReLU).
        """
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"expected faces [B, {self.config.in_channels}, H, W], got {list(x.shape)}"
            )
        return self.forward_head(self.forward_features(x))
