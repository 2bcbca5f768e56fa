"""NME with hand-computed values."""

from __future__ import annotations

import pytest
import torch

from progface.metrics.nme import inter_ocular_distance, nme


def test_nme_by_image_size_hand_computed():
    target = torch.zeros(2, 3, 2)
    pred = torch.tensor(
        [[[3.0, 4.0], [0.0, 0.0], [0.0, 1.0]], [[6.0, 8.0], [6.0, 8.0], [0.0, 0.0]]]
    )
    # image 0: errors 5, 0, 1 -> mean 2; image 1: 10, 10, 0 -> 20/3
    got = nme(pred, target, "size", 128)
    assert got.tolist() == pytest.approx([2 / 128, 20 / 3 / 128])
    per_image_size = nme(pred, target, "size", torch.tensor([64.0, 128.0]))
    assert per_image_size.tolist() == pytest.approx([2 / 64, 20 / 3 / 128])


def test_nme_inter_ocular_uses_outer_eye_corners():
    target = torch.zeros(1, 68, 2)
    target[0, 36] = torch.tensor([40.0, 60.0])
    target[0, 45] = torch.tensor([88.0, 60.0])  # 48 px apart
    pred = target.clone()
    pred[0, 30] += torch.tensor([0.0, 6.8])  # one landmark off by 6.8 px
    assert inter_ocular_distance(target).tolist() == [48.0]
    assert nme(pred, target, "inter_ocular").item() == pytest.approx(6.8 / 68 / 48)


def test_nme_errors():
    with pytest.raises(ValueError, match="must both be"):
        nme(torch.zeros(1, 68, 2), torch.zeros(1, 5, 2))
    with pytest.raises(ValueError, match="image size"):
        nme(torch.zeros(1, 5, 2), torch.zeros(1, 5, 2), "size")
    with pytest.raises(ValueError, match="68-point"):
        nme(torch.zeros(1, 5, 2), torch.zeros(1, 5, 2), "inter_ocular")
    with pytest.raises(ValueError, match="unknown normalisation"):
        nme(torch.zeros(1, 5, 2), torch.zeros(1, 5, 2), "box", 1)
