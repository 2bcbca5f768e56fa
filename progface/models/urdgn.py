"""URDGN / UR-DGN (Yu and Porikli, ECCV 2016): a small upsampling generator and a discriminator.

This is the layout of the author's released Torch code (github:XinYuANU/URDGN), not the paper's
text: the paper describes a generator of deconvolution (transposed-conv) layers, the released
code upsamples with nearest-neighbour x2 followed by a convolution. Generator (1,054,243
parameters), data in [-1, 1]:

    conv3x3 3->16 +BN+ReLU, up x2, conv3x3 16->64 +BN+ReLU, up x2, conv5x5 64->128 +BN+ReLU,
    up x2, conv5x5 128->256 +BN+ReLU, conv5x5 256->3 (no activation)

Discriminator (6,859,425 parameters at 128 px): four conv5x5 stages 3->32->64->128->96, each
with a 2x max-pool, ReLU and spatial dropout 0.2, then FC 6144->1024, ReLU, dropout 0.5, FC 1.
The released D ends in a sigmoid; here ``forward`` returns the logit and the BCE loss applies the
sigmoid (the same function, numerically safer).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from progface.models import configured

__all__ = ["URDGNConfig", "URDGNDiscriminator", "URDGNDiscriminatorConfig", "URDGNGenerator"]


@dataclass(frozen=True)
class URDGNConfig:
    """Architecture of the URDGN generator.

    Args:
        in_size: side of the LR input (16).
        widths: channels after each of the four conv stages.
    """

    in_size: int = 16
    widths: tuple[int, int, int, int] = (16, 64, 128, 256)


def _conv_bn_relu(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class URDGNGenerator(nn.Module):
    """URDGN generator: 16x16 LR face -> 128x128 SR face, both in [-1, 1]."""

    def __init__(self, config: URDGNConfig | None = None, **overrides: Any) -> None:
        """Build from ``config`` (default :class:`URDGNConfig`) with its fields overridden by
        keyword, e.g. ``URDGNGenerator(widths=(4, 8, 8, 8))``."""
        super().__init__()
        self.config = configured("URDGNGenerator", URDGNConfig, config, overrides)
        widths = self.config.widths
        if len(widths) != 4:
            raise ValueError(f"widths must have 4 entries, got {widths}")
        w1, w2, w3, w4 = widths
        self.body = nn.Sequential(
            _conv_bn_relu(3, w1, 3),
            nn.Upsample(scale_factor=2, mode="nearest"),
            _conv_bn_relu(w1, w2, 3),
            nn.Upsample(scale_factor=2, mode="nearest"),
            _conv_bn_relu(w2, w3, 5),
            nn.Upsample(scale_factor=2, mode="nearest"),
            _conv_bn_relu(w3, w4, 5),
        )
        self.head = nn.Conv2d(w4, 3, 5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args:
            x: ``[B,3,16,16]`` LR faces in [-1, 1].

        Returns:
            ``[B,3,128,128]`` SR faces, nominally in [-1, 1] (no output activation).
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"URDGN expects [B,3,H,W], got shape {tuple(x.shape)}")
        return self.head(self.body(x))

    def super_resolve(self, lr: torch.Tensor) -> torch.Tensor:
        """LR faces ``[B,3,16,16]`` in [0, 1] -> SR ``[B,3,128,128]`` in [0, 1] (not clamped)."""
        return self(lr * 2 - 1) * 0.5 + 0.5

    def config_dict(self) -> dict:
        cfg = asdict(self.config)
        return {"architecture": "urdgn", **cfg, "widths": list(cfg["widths"])}


@dataclass(frozen=True)
class URDGNDiscriminatorConfig:
    """Architecture of the URDGN discriminator.

    Args:
        size: side of the faces it reads (a multiple of 16).
        hidden: width of the first fully connected layer.
    """

    size: int = 128
    hidden: int = 1024


class URDGNDiscriminator(nn.Module):
    """URDGN discriminator: ``[B,3,size,size]`` in [-1, 1] -> ``[B]`` real/fake logits."""

    def __init__(self, config: URDGNDiscriminatorConfig | None = None, **overrides: Any) -> None:
        """Build from ``config`` (default :class:`URDGNDiscriminatorConfig`) with its fields
        overridden by keyword."""
        super().__init__()
        self.config = configured("URDGNDiscriminator", URDGNDiscriminatorConfig, config, overrides)
        size, hidden = self.config.size, self.config.hidden
        if size % 16:
            raise ValueError(f"size must be a multiple of 16, got {size}")
        self.size = size
        stages = []
        for i, (cin, cout) in enumerate(((3, 32), (32, 64), (64, 128), (128, 96))):
            conv = nn.Conv2d(cin, cout, 5, padding=2)
            # The released net pools before the ReLU in the first three stages and after it in
            # the last; both orders give the same values (max-pool commutes with ReLU).
            acts = (nn.MaxPool2d(2), nn.ReLU(inplace=True))
            stages += [conv, *(acts if i < 3 else acts[::-1]), nn.Dropout2d(0.2)]
        self.features = nn.Sequential(*stages)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(96 * (size // 16) ** 2, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args:
            x: ``[B,3,size,size]`` faces in [-1, 1].

        Returns:
            ``[B]`` logits (sigmoid gives the probability that the face is real).
        """
        if x.ndim != 4 or x.shape[1:] != (3, self.size, self.size):
            raise ValueError(
                f"URDGN discriminator expects [B,3,{self.size},{self.size}], got {tuple(x.shape)}"
            )
        return self.classifier(self.features(x)).squeeze(1)
