"""A test helper: BatchNorm statistics that look trained (with the defaults a fold is identity)."""

from __future__ import annotations

import torch
from torch import nn


def random_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm2d of ``model`` random running statistics and affine parameters;
    returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.2)
    return model.eval()
