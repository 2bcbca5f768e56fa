"""FSRNet / FSRGAN (Chen, Tai, Liu, Shen and Yang, CVPR 2018): face SR with facial priors.

The input is the 16x16 face bicubic-upsampled to 128x128 (as in the authors' test code), in
[-1, 1]. Four sub-networks:

- coarse SR: conv3x3 3->64 +BN+ReLU, 3 ResBlocks(64), conv3x3 64->3, tanh -> coarse 128x128 face;
- fine SR encoder: conv3x3 stride 2 3->64 +BN+ReLU, 12 ResBlocks(64), conv3x3 64->64, tanh ->
  64x64 features;
- prior estimation: conv7x7 stride 2 3->64 +BN+ReLU, bottleneck 64->128, 2 ResBlocks(128),
  2 hourglasses (128 channels, depth 3) -> 128x64x64 prior features; 1x1 heads give the prior
  maps (landmark heatmaps, then parsing maps) at 64x64;
- fine SR decoder: concat(encoder, prior features) 192 -> conv3x3 64 +BN+ReLU, transposed conv
  3x3 stride 2 +BN+ReLU, 3 ResBlocks(64), conv3x3 64->3, tanh -> the SR face.

The layout follows the paper's description and the cs-giung/FSRNet-pytorch re-implementation,
but every residual block has its own weights (that port repeats one block object, which shares
weights: 2,162,703 parameters instead of 3,272,463 with 68 heatmaps + 11 parsing maps).
``FSRGANDiscriminator`` is the SRGAN-style patch discriminator that port uses (4,693,697).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from progface.models import configured

__all__ = [
    "FSRGANDiscriminator",
    "FSRGANDiscriminatorConfig",
    "FSRNet",
    "FSRNetConfig",
    "FSRNetOutput",
]


@dataclass(frozen=True)
class FSRNetConfig:
    """Architecture of FSRNet.

    Args:
        num_landmarks: landmark heatmap channels of the prior (68; 194 on Helen; 0 for none).
        num_parsing: parsing-map channels of the prior (11; 0 when no parsing maps exist).
        size: side of the upsampled input and of the output (128).
        hourglass_depth: levels of each hourglass (3: 64 -> 8 px).
    """

    num_landmarks: int = 68
    num_parsing: int = 11
    size: int = 128
    hourglass_depth: int = 3


class FSRNetOutput(NamedTuple):
    coarse: torch.Tensor  # [B,3,size,size] coarse SR face in [-1, 1]
    priors: torch.Tensor  # [B,num_landmarks+num_parsing,size/2,size/2], heatmaps first
    sr: torch.Tensor  # [B,3,size,size] final SR face in [-1, 1]


def _conv_bn_relu(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _conv3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, bias=False, padding_mode="reflect")


class ResBlock(nn.Module):
    """conv3x3 - BN - ReLU - conv3x3 - BN plus identity; convs without bias, reflect padding."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv3(dim, dim), nn.BatchNorm2d(dim), nn.ReLU(inplace=True),
            _conv3(dim, dim), nn.BatchNorm2d(dim),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Bottleneck(nn.Module):
    """Pre-activation bottleneck (BN-ReLU-1x1 C/2, BN-ReLU-3x3, BN-ReLU-1x1 out) of the
    hourglasses; a 1x1 conv maps the skip when the widths differ."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = cout // 2
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, mid, 1),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, mid, 3, padding=1),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, cout, 1),
        )  # fmt: skip
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class Hourglass(nn.Module):
    """Recursive hourglass: a full-resolution branch plus pool -> inner -> upsample, summed."""

    def __init__(self, dim: int, depth: int) -> None:
        super().__init__()
        self.up_branch = Bottleneck(dim, dim)
        self.down = Bottleneck(dim, dim)
        self.inner = Hourglass(dim, depth - 1) if depth > 1 else Bottleneck(dim, dim)
        self.after = Bottleneck(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.after(self.inner(self.down(F.max_pool2d(x, 2))))
        return self.up_branch(x) + F.interpolate(low, scale_factor=2, mode="nearest")


class FSRNet(nn.Module):
    """FSRNet generator; see the module docstring for the layout."""

    def __init__(self, config: FSRNetConfig | None = None, **overrides: Any) -> None:
        """Build from ``config`` (default :class:`FSRNetConfig`) with its fields overridden by
        keyword, e.g. ``FSRNet(num_parsing=0)``."""
        super().__init__()
        self.config = configured("FSRNet", FSRNetConfig, config, overrides)
        num_landmarks, num_parsing = self.config.num_landmarks, self.config.num_parsing
        size, hourglass_depth = self.config.size, self.config.hourglass_depth
        if num_landmarks < 0 or num_parsing < 0 or num_landmarks + num_parsing == 0:
            raise ValueError(
                f"FSRNet needs prior channels (num_landmarks={num_landmarks}, "
                f"num_parsing={num_parsing})"
            )
        if size % 2 ** (hourglass_depth + 1):
            raise ValueError(f"size {size} does not fit hourglass depth {hourglass_depth}")
        self.coarse = nn.Sequential(
            _conv_bn_relu(3, 64, 3), *(ResBlock(64) for _ in range(3)), _conv3(64, 3), nn.Tanh()
        )
        self.encoder = nn.Sequential(
            _conv_bn_relu(3, 64, 3, stride=2),
            *(ResBlock(64) for _ in range(12)),
            _conv3(64, 64),
            nn.Tanh(),
        )
        self.prior = nn.Sequential(
            _conv_bn_relu(3, 64, 7, stride=2),
            Bottleneck(64, 128),
            ResBlock(128),
            ResBlock(128),
            Hourglass(128, hourglass_depth),
            Hourglass(128, hourglass_depth),
        )
        self.heatmap_head = nn.Conv2d(128, num_landmarks, 1) if num_landmarks else None
        self.parsing_head = nn.Conv2d(128, num_parsing, 1) if num_parsing else None
        self.decoder = nn.Sequential(
            _conv_bn_relu(64 + 128, 64, 3),
            nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            *(ResBlock(64) for _ in range(3)),
            _conv3(64, 3),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> FSRNetOutput:
        """Args:
            x: ``[B,3,size,size]`` bicubic-upsampled LR faces in [-1, 1].

        Returns:
            :class:`FSRNetOutput` ``(coarse, priors, sr)``; see its field comments for shapes.
        """
        size = self.config.size
        if x.ndim != 4 or x.shape[1:] != (3, size, size):
            raise ValueError(f"FSRNet expects [B,3,{size},{size}], got shape {tuple(x.shape)}")
        coarse = self.coarse(x)
        features = self.prior(coarse)
        heads = [h(features) for h in (self.heatmap_head, self.parsing_head) if h is not None]
        sr = self.decoder(torch.cat([self.encoder(coarse), features], dim=1))
        return FSRNetOutput(coarse, torch.cat(heads, dim=1), sr)

    def prepare(self, lr: torch.Tensor) -> torch.Tensor:
        """LR faces ``[B,3,h,w]`` in [0, 1] -> the network input: bicubic to ``size``, [-1, 1]."""
        up = F.interpolate(
            lr, size=(self.config.size,) * 2, mode="bicubic", align_corners=False, antialias=True
        )
        return up * 2 - 1

    def super_resolve(self, lr: torch.Tensor) -> torch.Tensor:
        """LR faces ``[B,3,16,16]`` in [0, 1] -> SR ``[B,3,128,128]`` in [0, 1]."""
        return self(self.prepare(lr)).sr * 0.5 + 0.5

    def config_dict(self) -> dict:
        return {"architecture": "fsrnet", **asdict(self.config)}


@dataclass(frozen=True)
class FSRGANDiscriminatorConfig:
    """Architecture of :class:`FSRGANDiscriminator`.

    Args:
        widths: channels of the four stages.
    """

    widths: tuple[int, ...] = (64, 128, 256, 512)


class FSRGANDiscriminator(nn.Module):
    """SRGAN-style patch discriminator: ``[B,3,H,W]`` in [-1, 1] -> ``[B,1,H/16,W/16]`` logits.

    Four stages [conv3x3 (+BN except the first) + LeakyReLU 0.2, conv3x3 stride 2 + BN +
    LeakyReLU 0.2] at 64/128/256/512 channels, then conv3x3 -> 1. The sigmoid of the port's last
    layer lives in the BCE-with-logits loss.
    """

    def __init__(self, config: FSRGANDiscriminatorConfig | None = None, **overrides: Any) -> None:
        """Build from ``config`` (default :class:`FSRGANDiscriminatorConfig`) with its fields
        overridden by keyword."""
        super().__init__()
        self.config = configured(
            "FSRGANDiscriminator", FSRGANDiscriminatorConfig, config, overrides
        )
        widths = self.config.widths
        layers: list[nn.Module] = []
        cin = 3
        for i, w in enumerate(widths):
            layers.append(nn.Conv2d(cin, w, 3, padding=1))
            if i > 0:
                layers.append(nn.BatchNorm2d(w))
            layers += [nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(w, w, 3, stride=2, padding=1)]
            layers += [nn.BatchNorm2d(w), nn.LeakyReLU(0.2, inplace=True)]
            cin = w
        layers.append(nn.Conv2d(cin, 1, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args:
            x: ``[B,3,H,W]`` faces in [-1, 1], H and W multiples of 16.

        Returns:
            ``[B,1,H/16,W/16]`` patch logits.
        """
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[-1] % 16 or x.shape[-2] % 16:
            raise ValueError(f"FSRGAN discriminator expects [B,3,16k,16m], got {tuple(x.shape)}")
        return self.body(x)
