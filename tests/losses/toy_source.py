"""A tiny heatmap source (the heatmap-source API) for loss and trainer tests."""

from __future__ import annotations

import torch
from torch import nn


class TinySource(nn.Module):
    """conv -> BN -> conv: [B,3,H,W] in [0,1] -> [B,N,H/2,W/2] heatmaps."""

    def __init__(self, num_landmarks: int = 5) -> None:
        super().__init__()
        self.num_landmarks = num_landmarks
        self.net = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1, stride=2), nn.BatchNorm2d(4), nn.ReLU(),
            nn.Conv2d(4, num_landmarks, 3, padding=1),
        )  # fmt: skip

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)
