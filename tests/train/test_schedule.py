"""The shared learning-rate helpers."""

from __future__ import annotations

import math

import pytest
import torch

from progface.train.schedule import cosine, set_lr


def test_cosine_ends_and_middle_by_hand():
    assert cosine(1e-3, 1e-5, 0, 100) == pytest.approx(1e-3)
    assert cosine(1e-3, 1e-5, 100, 100) == pytest.approx(1e-5)
    assert cosine(1e-3, 1e-5, 50, 100) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert cosine(1.0, 0.0, 25, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_set_lr_reaches_every_parameter_group():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    opt = torch.optim.Adam([{"params": a.parameters()}, {"params": b.parameters(), "lr": 5.0}])
    set_lr(opt, 0.25)
    assert [g["lr"] for g in opt.param_groups] == [0.25, 0.25]
