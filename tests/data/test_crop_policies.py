from __future__ import annotations

import pytest
import torch

from progface.data.crop import CROP_POLICIES, apply_crop, crop_box, map_points
from progface.data.errors import ImageError


def _numbered(height: int, width: int) -> torch.Tensor:
    """[3, H, W] whose value at (y, x) is y * 1000 + x."""
    y = torch.arange(height).view(-1, 1) * 1000
    x = torch.arange(width).view(1, -1)
    return (y + x).float().expand(3, height, width)


def test_policies_listed():
    assert CROP_POLICIES == ("celeba", "center", "none")


def test_celeba_box_rows_20_to_197():
    out = apply_crop(_numbered(218, 178), "celeba")
    assert out.shape == (3, 178, 178)
    assert out[0, 0, 0].item() == 20_000 and out[0, -1, -1].item() == 197_177


def test_celeba_rejects_other_sizes():
    with pytest.raises(ImageError) as info:
        apply_crop(torch.zeros(3, 128, 128), "celeba", path="x/y.png")
    assert str(info.value) == (
        "x/y.png: crop 'celeba' expects a 178x218 aligned CelebA image, got 128x128"
    )


@pytest.mark.parametrize(
    ("height", "width", "first", "side"),
    [(100, 60, 20_000, 60), (60, 101, 20, 60), (50, 50, 0, 50), (7, 10, 1, 7)],
)
def test_center_largest_centred_square(height, width, first, side):
    out = apply_crop(_numbered(height, width), "center")
    assert out.shape == (3, side, side)
    assert out[0, 0, 0].item() == first


def test_none_keeps_square_and_rejects_non_square():
    img = _numbered(40, 40)
    assert torch.equal(apply_crop(img, "none"), img)
    with pytest.raises(ImageError) as info:
        apply_crop(_numbered(30, 40), "none", path="a.jpg")
    assert info.value.reason == "not square (40x30): use --crop center"


def test_unknown_policy_and_bad_input():
    with pytest.raises(ValueError, match="unknown crop policy 'middle'; choose one of celeba"):
        crop_box(10, 10, "middle")
    with pytest.raises(ValueError, match=r"\[C, H, W\]"):
        apply_crop(torch.zeros(1, 3, 8, 8), "none")


def test_map_points_known_answers():
    box = crop_box(200, 160, "center")  # (20, 0, 180, 160), scale 128 / 160 = 0.8
    assert box == (20, 0, 180, 160)
    pts = torch.tensor([[99.5, 79.5], [20.0, 0.0], [179.5, 159.5], [-0.5 + 20, -0.5]])
    out = map_points(pts, box, 128)
    expected = torch.tensor([[63.5, 63.5], [-0.1, -0.1], [127.5, 127.5], [-0.5, -0.5]])
    assert torch.allclose(out, expected, atol=1e-5)
