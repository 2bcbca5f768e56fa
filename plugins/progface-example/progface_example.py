"""An example third-party progface plugin: one method and one metric.

Install it with ``pip install plugins/progface-example``; ``progface plugins`` then lists it,
and ``progface bench --methods bicubic,sharp-bicubic --metrics psnr,mae`` uses both.
"""

from __future__ import annotations

import progface
from progface.registry import MethodSpec, MetricSpec


def load_sharp_bicubic(weights=None, device="cpu"):
    import kornia
    import torch.nn.functional as F

    def upscale(lr):
        up = F.interpolate(lr, size=(128, 128), mode="bicubic", antialias=True)
        return kornia.enhance.sharpness(up.clamp(0, 1), 0.5)

    return upscale


def mae(sr, hr):
    """Mean absolute error per image, [B]."""
    return (sr - hr).abs().flatten(1).mean(1)


@progface.hookimpl
def register_methods(register):
    register(MethodSpec("sharp-bicubic", load_sharp_bicubic, "bicubic, then kornia sharpening 0.5"))


@progface.hookimpl
def register_metrics(register):
    register(MetricSpec("mae", mae, "mean absolute error", higher_is_better=False))
