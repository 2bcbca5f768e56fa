"""A progface plugin. Replace the example method with your own."""

from __future__ import annotations

import progface
from progface.registry import MethodSpec


def load(weights=None, device="cpu"):
    import torch.nn.functional as F

    # LR faces [B,3,16,16] in [0,1] -> SR faces [B,3,128,128] in [0,1]
    return lambda lr: F.interpolate(lr, size=(128, 128), mode="nearest")


@progface.hookimpl
def register_methods(register):
    register(MethodSpec("myplugin-nearest", load, "nearest-neighbour upsampling"))
