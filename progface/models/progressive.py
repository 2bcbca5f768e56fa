"""Progressive face SR generator and discriminator (Kim et al., BMVC 2019).

The generator upsamples 16 px faces by 2x per step (steps 1, 2, 3 -> 32, 64, 128 px); while
a new step fades in, its output is blended with the nearest-neighbour upsampling of the
previous step's RGB. The discriminator mirrors it, reading RGB at the step's resolution.

Layer order, names and sizes follow the authors' ``model.py`` so their checkpoints load with a
strict key check: generator 8,969,097 parameters (76 state-dict entries), discriminator
8,065,537 (24 entries). Convolutions inside residual and discriminator blocks use the
equalised learning rate (weight stored unscaled as ``weight_orig``, N(0, 1) init, scaled by
sqrt(2 / fan_in) at every forward).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from progface.models import configured

__all__ = [
    "EqualConv2d",
    "ProgressiveDiscriminator",
    "ProgressiveGenerator",
    "ProgressiveConfig",
    "ProgressiveSR",
    "minibatch_std",
]


@dataclass(frozen=True)
class ProgressiveConfig:
    """Widths of the step blocks: ``channels[0]`` at 16 px, ``channels[i]`` after step ``i``.

    The paper's network is the default; narrower widths are for fast tests only.
    """

    channels: tuple[int, int, int, int] = (512, 256, 128, 64)
    d_hidden: int = 2048  # width of the discriminator's first linear layer


class _ScaledConvWeight(nn.Module):
    """Holds ``bias`` then ``weight_orig`` (the authors' key names and order)."""

    def __init__(self, cin: int, cout: int, kernel: int, padding: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(cout))
        self.weight_orig = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.padding = padding
        self.scale = math.sqrt(2.0 / (cin * kernel * kernel))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight_orig * self.scale, self.bias, padding=self.padding)


class EqualConv2d(nn.Module):
    """Conv2d with the equalised learning rate (stride 1). Keys: ``conv.bias``,
    ``conv.weight_orig``."""

    def __init__(self, cin: int, cout: int, kernel: int, *, padding: int = 0) -> None:
        super().__init__()
        self.conv = _ScaledConvWeight(cin, cout, kernel, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ResBlock(nn.Module):
    """x + (EqConv -> BN -> ReLU -> EqConv -> BN -> ReLU)(x): the ReLU comes before the add."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            EqualConv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            EqualConv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class ConvBlock(nn.Module):
    """EqConv -> LeakyReLU(0.2) -> EqConv -> LeakyReLU(0.2)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            EqualConv2d(cin, cout, 3, padding=1),
            nn.LeakyReLU(0.2),
            EqualConv2d(cout, cout, 3, padding=1),
            nn.LeakyReLU(0.2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _upsample(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]


def _check(x: torch.Tensor, step: int, multiple: int = 1) -> None:
    if step not in (1, 2, 3):
        raise ValueError(f"step must be 1, 2 or 3, got {step!r}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected RGB images [B,3,H,W], got shape {tuple(x.shape)}")
    if x.shape[-1] % multiple or x.shape[-2] % multiple:
        raise ValueError(
            f"step {step} needs sides divisible by {multiple}, got {tuple(x.shape[-2:])}"
        )


def _blending(alpha: float) -> bool:
    return 0.0 <= alpha < 1.0


class ProgressiveGenerator(nn.Module):
    """The SR network: 16 px -> 32, 64 or 128 px (step 1, 2 or 3), no output activation.

    Args:
        config: block widths (default: the paper's).
        **overrides: fields of ``config`` to replace, e.g. ``d_hidden=8``.
    """

    def __init__(self, config: ProgressiveConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = configured("ProgressiveGenerator", ProgressiveConfig, config, overrides)
        c0, c1, c2, c3 = self.config.channels
        # Registration order = the authors' state-dict order (to_rgb first).
        self.to_rgb = nn.ModuleList([nn.Conv2d(c, 3, 1) for c in (c1, c2, c3)])
        self.step1 = nn.Sequential(
            nn.Conv2d(3, c0, 3, padding=1),
            nn.BatchNorm2d(c0),
            nn.ReLU(),
            ResBlock(c0),
            *_upsample(c0, c1),
        )
        self.step2 = nn.Sequential(ResBlock(c1), *_upsample(c1, c2))
        self.step3 = nn.Sequential(ResBlock(c2), *_upsample(c2, c3))

    def forward(self, x: torch.Tensor, step: int = 3, alpha: float = -1.0) -> torch.Tensor:
        """Super-resolve ``x``.

        Args:
            x: ``[B,3,16,16]`` LR faces in [-1, 1] (any size works; outputs are 2**step larger).
            step: 1, 2 or 3 (output 32, 64 or 128 px for 16 px input).
            alpha: fade-in weight of the newest step; only 0 <= alpha < 1 blends
                ``(1 - alpha) * nearest_x2(rgb of step-1) + alpha * rgb of step`` (step 2, 3).
                alpha >= 1 or < 0 (default -1) takes the plain path.

        Returns:
            ``[B,3,H*2**step,W*2**step]`` in [-1, 1] (not clamped).
        """
        _check(x, step)
        feats = [self.step1(x)]
        for block in (self.step2, self.step3)[: step - 1]:
            feats.append(block(feats[-1]))
        out = self.to_rgb[step - 1](feats[-1])
        if step > 1 and _blending(alpha):
            skip = F.interpolate(self.to_rgb[step - 2](feats[-2]), scale_factor=2, mode="nearest")
            out = (1 - alpha) * skip + alpha * out
        return out


def minibatch_std(x: torch.Tensor) -> torch.Tensor:
    """One scalar per batch: the std over the batch (unbiased), averaged over C, H and W.

    With a single image the std is undefined (the authors' code gives NaN); it is 0 here, the
    value a batch of identical images gets.
    """
    if x.shape[0] < 2:
        return x.new_zeros(())
    return x.std(dim=0, unbiased=True).mean()


class ProgressiveDiscriminator(nn.Module):
    """The critic: RGB at 32, 64 or 128 px (step 1, 2 or 3) -> one score per image.

    Args:
        config: block widths (default: the paper's).
        **overrides: fields of ``config`` to replace, e.g. ``d_hidden=8``.
    """

    def __init__(self, config: ProgressiveConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = configured("ProgressiveDiscriminator", ProgressiveConfig, config, overrides)
        c0, c1, c2, c3 = self.config.channels
        self.from_rgb = nn.ModuleList([nn.Conv2d(3, c, 1) for c in (c1, c2, c3)])
        self.step1 = nn.Sequential(ConvBlock(c1, c0), nn.AvgPool2d(2))
        self.step2 = nn.Sequential(ConvBlock(c2, c1), nn.AvgPool2d(2))
        self.step3 = nn.Sequential(ConvBlock(c3, c2), nn.AvgPool2d(2))
        self.equal_conv = EqualConv2d(c0 + 1, c0, 3, padding=1)
        self.linear = nn.Linear(c0, self.config.d_hidden)
        self.linear2 = nn.Linear(self.config.d_hidden, 1)

    def forward(self, x: torch.Tensor, step: int = 3, alpha: float = -1.0) -> torch.Tensor:
        """Score ``x``.

        Args:
            x: ``[B,3,S,S]`` faces in [-1, 1], S = 32, 64 or 128 at step 1, 2 or 3 (any S
                divisible by 2**step works: the head averages over space).
            step: 1, 2 or 3.
            alpha: fade-in weight (0 <= alpha < 1 blends the new block's features with
                ``from_rgb`` of the 2x average-pooled input, as the generator blends RGB).

        Returns:
            ``[B]`` scores (higher: more real).
        """
        _check(x, step, 2**step)
        blocks = (self.step1, self.step2, self.step3)
        out = blocks[step - 1](self.from_rgb[step - 1](x))
        if step > 1 and _blending(alpha):
            skip = self.from_rgb[step - 2](F.avg_pool2d(x, 2))
            out = (1 - alpha) * skip + alpha * out
        for block in reversed(blocks[: step - 1]):
            out = block(out)
        std = minibatch_std(x).expand(out.shape[0], 1, *out.shape[2:])
        out = self.equal_conv(torch.cat([out, std.to(out.dtype)], dim=1))
        out = self.linear2(self.linear(out.mean(dim=(2, 3))))
        return out.squeeze(1)


class ProgressiveSR(nn.Module):
    """Inference wrapper: ``[B,3,16,16]`` in [0, 1] -> ``[B,3,128,128]`` in [0, 1] (not clamped).

    Runs ``generator`` at ``step`` (3: 128 px) and ``alpha`` (1: no blending) on inputs mapped
    to [-1, 1], and maps the output back with ``0.5 * y + 0.5``.
    """

    def __init__(self, generator: ProgressiveGenerator, *, step: int = 3, alpha: float = 1.0):
        super().__init__()
        self.generator, self.step, self.alpha = generator, step, alpha

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.generator(lr * 2 - 1, self.step, self.alpha) * 0.5 + 0.5
