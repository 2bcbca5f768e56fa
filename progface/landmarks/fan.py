"""FAN-4: the 2D face alignment network of Bulat & Tzimiropoulos (ICCV 2017), 4 stacked hourglasses.

Re-implemented from its published description with face-alignment's (1adrianb/face-alignment)
state-dict layout, so ``2DFAN4-11f355bf06.pth.tar`` loads strictly: 23,820,176 parameters,
1,129 state-dict entries. Input: RGB faces in [0, 1] at 256 px (no mean/std normalisation);
output: one 68x64x64 heatmap tensor per stack, the last one being the prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from progface.models import configured

__all__ = ["FAN", "ConvBlock", "FANConfig", "HourGlass", "NUM_PARAMETERS"]

NUM_PARAMETERS = 23_820_176


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, 1, bias=False)


class ConvBlock(nn.Module):
    """Pre-activation hierarchical block: three chained BN-ReLU-conv3x3 branches with
    ``out/2, out/4, out/4`` channels, concatenated, plus an identity or BN-ReLU-conv1x1 skip."""

    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__()
        half, quarter = out_planes // 2, out_planes // 4
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = _conv3x3(in_planes, half)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv2 = _conv3x3(half, quarter)
        self.bn3 = nn.BatchNorm2d(quarter)
        self.conv3 = _conv3x3(quarter, quarter)
        self.downsample: nn.Module | None = None
        if in_planes != out_planes:
            self.downsample = nn.Sequential(
                nn.BatchNorm2d(in_planes),
                nn.ReLU(inplace=True),
                nn.Conv2d(in_planes, out_planes, 1, 1, bias=False),
            )

    def forward(self, x: Tensor) -> Tensor:
        out1 = self.conv1(F.relu(self.bn1(x)))
        out2 = self.conv2(F.relu(self.bn2(out1)))
        out3 = self.conv3(F.relu(self.bn3(out2)))
        skip = x if self.downsample is None else self.downsample(x)
        return torch.cat((out1, out2, out3), dim=1) + skip


class HourGlass(nn.Module):
    """Recursive hourglass of ``depth`` levels: at each level an upper ConvBlock at full
    resolution plus a lower branch (avg-pool /2, ConvBlock, the next level, ConvBlock, nearest
    x2). Module names ``b1_L``, ``b2_L``, ``b2_plus_1``, ``b3_L`` follow face-alignment."""

    def __init__(self, depth: int = 4, features: int = 256) -> None:
        super().__init__()
        self.depth = depth
        self._build(depth, features)

    def _build(self, level: int, features: int) -> None:
        # registration order (b1_L, b2_L, deeper levels, b3_L) fixes the state-dict key order
        self.add_module(f"b1_{level}", ConvBlock(features, features))
        self.add_module(f"b2_{level}", ConvBlock(features, features))
        if level > 1:
            self._build(level - 1, features)
        else:
            self.add_module(f"b2_plus_{level}", ConvBlock(features, features))
        self.add_module(f"b3_{level}", ConvBlock(features, features))

    def _level(self, level: int, x: Tensor) -> Tensor:
        upper = self._modules[f"b1_{level}"](x)
        low = self._modules[f"b2_{level}"](F.avg_pool2d(x, 2, stride=2))
        if level > 1:
            low = self._level(level - 1, low)
        else:
            low = self._modules[f"b2_plus_{level}"](low)
        low = self._modules[f"b3_{level}"](low)
        return upper + F.interpolate(low, scale_factor=2.0, mode="nearest")

    def forward(self, x: Tensor) -> Tensor:
        """Features ``[B, C, H, W]`` (H, W divisible by 2**depth) -> ``[B, C, H, W]``."""
        return self._level(self.depth, x)


@dataclass(frozen=True)
class FANConfig:
    """Architecture of :class:`FAN` (defaults: face-alignment's 2D-FAN-4)."""

    num_modules: int = 4
    num_landmarks: int = 68
    features: int = 256
    hourglass_depth: int = 4


class FAN(nn.Module):
    """Stacked-hourglass face alignment network (face-alignment's ``FAN(num_modules)``)."""

    def __init__(self, config: FANConfig | None = None, **overrides: Any) -> None:
        """Build from ``config`` (default :class:`FANConfig`) with its fields overridden by
        keyword, e.g. ``FAN(num_modules=2)``."""
        super().__init__()
        self.config = configured("FAN", FANConfig, config, overrides)
        num_modules, num_landmarks = self.config.num_modules, self.config.num_landmarks
        features, hourglass_depth = self.config.features, self.config.hourglass_depth
        self.num_modules = num_modules
        self.num_landmarks = num_landmarks
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = ConvBlock(64, 128)
        self.conv3 = ConvBlock(128, 128)
        self.conv4 = ConvBlock(128, features)
        for i in range(num_modules):
            self.add_module(f"m{i}", HourGlass(hourglass_depth, features))
            self.add_module(f"top_m_{i}", ConvBlock(features, features))
            self.add_module(f"conv_last{i}", nn.Conv2d(features, features, 1))
            self.add_module(f"bn_end{i}", nn.BatchNorm2d(features))
            self.add_module(f"l{i}", nn.Conv2d(features, num_landmarks, 1))
            if i < num_modules - 1:
                # intermediate supervision: features and heatmaps feed the next stack
                self.add_module(f"bl{i}", nn.Conv2d(features, features, 1))
                self.add_module(f"al{i}", nn.Conv2d(num_landmarks, features, 1))

    def forward_stacks(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Faces ``[B, 3, 256, 256]`` in [0, 1] -> (per-stack features ``[B, 256, 64, 64]``,
        per-stack heatmaps ``[B, 68, 64, 64]``)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected faces [B, 3, H, W], got {list(x.shape)}")
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.avg_pool2d(self.conv2(x), 2, stride=2)
        x = self.conv4(self.conv3(x))
        previous = x
        features, heatmaps = [], []
        m = self._modules
        for i in range(self.num_modules):
            ll = m[f"top_m_{i}"](m[f"m{i}"](previous))
            ll = F.relu(m[f"bn_end{i}"](m[f"conv_last{i}"](ll)))
            out = m[f"l{i}"](ll)
            features.append(ll)
            heatmaps.append(out)
            if i < self.num_modules - 1:
                previous = previous + m[f"bl{i}"](ll) + m[f"al{i}"](out)
        return features, heatmaps

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """Faces ``[B, 3, 256, 256]`` -> per-stack features ``[B, 256, 64, 64]``."""
        return self.forward_stacks(x)[0]

    def forward(self, x: Tensor) -> list[Tensor]:
        """Faces ``[B, 3, 256, 256]`` in [0, 1] -> list of ``num_modules`` heatmap tensors
        ``[B, 68, 64, 64]``; the last is the prediction (peaks near 1)."""
        return self.forward_stacks(x)[1]
