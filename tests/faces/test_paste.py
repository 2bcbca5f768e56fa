"""Background enlargement, the feathered mask, colour matching and pasting a face back."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from progface.faces.align import apply_affine, invert_affine
from progface.faces.paste import enlarge, face_mask, match_color, paste_face, paste_matrix
from tests.faces.helpers import similarity


def test_tiled_enlargement_equals_enlarging_at_once():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)
    whole = F.interpolate(
        torch.from_numpy(photo).permute(2, 0, 1).float()[None] / 255,
        size=(37 * 3, 45 * 3),
        mode="bicubic",
        align_corners=False,
    )
    expect = (whole[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    got = enlarge(photo, 3, "bicubic", tile=16, halo=4)
    assert got.shape == (111, 135, 3) and got.dtype == np.uint8
    # equal up to float summation order: +-1 level, rarely
    diff = np.abs(got.astype(int) - expect)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.002
    # too small a halo for bicubic shows at the tile joins: the halo matters
    assert np.abs(enlarge(photo, 3, "bicubic", tile=16, halo=0).astype(int) - expect).max() > 20


def test_enlarge_takes_any_callable():
    photo = np.full((10, 12, 3), 7, np.uint8)
    seen = []

    def method(x, scale):
        seen.append(tuple(x.shape))
        return torch.full((1, 3, x.shape[-2] * scale, x.shape[-1] * scale), 0.5)

    out = enlarge(photo, 2, method, tile=8, halo=1)
    assert out.shape == (20, 24, 3) and (out == 128).all()
    assert len(seen) == 4


@pytest.mark.parametrize("shape", ["ellipse", "rect"])
def test_mask_is_one_at_the_centre_and_zero_at_the_edges(shape):
    m = face_mask(128, shape)
    assert m.shape == (128, 128)
    assert float(m.min()) >= 0 and float(m.max()) <= 1
    assert float(m[64, 64]) == 1.0 and float(m[70, 63]) == 1.0
    for edge in (m[0], m[-1], m[:, 0], m[:, -1]):
        assert float(edge.max()) == 0.0
    # soft: values strictly between 0 and 1 exist (a feather, not a hard cut)
    assert ((m > 0.05) & (m < 0.95)).sum() > 100
    # the ellipse leaves the frame's corners to the background, the rectangle covers them
    assert (float(m[12, 12]) == 0.0) == (shape == "ellipse")


def test_mean_std_colour_matching_by_hand():
    src = torch.tensor([0.2, 0.4]).repeat(3, 4, 2)  # columns alternate 0.2 / 0.4
    ref = torch.tensor([0.5, 0.9]).repeat(3, 4, 2)
    w = torch.ones(4, 4)
    out = match_color(src, ref, w, "meanstd")  # mean 0.3 -> 0.7, std 0.1 -> 0.2
    torch.testing.assert_close(out, ref)
    out = match_color(src, ref, w, "mean")  # shift only: +0.4
    torch.testing.assert_close(out, src + 0.4)
    # only the weighted region counts: weight on the 0.2 columns alone
    w2 = torch.tensor([1.0, 0.0]).repeat(4, 2)
    out = match_color(src, torch.full_like(src, 0.6), w2, "mean")
    torch.testing.assert_close(out, src + 0.4)


@pytest.mark.parametrize("mode", ["lowfreq", "meanstd", "mean"])
def test_constant_patch_takes_the_reference_colour(mode):
    src = torch.tensor([0.2, 0.5, 0.7])[:, None, None].expand(3, 20, 24).clone()
    ref = torch.tensor([0.3, 0.4, 0.6])[:, None, None].expand(3, 20, 24).clone()
    w = face_mask(20, "rect")[:, :20].repeat(1, 2)[:, :24]
    out = match_color(src, ref, w, mode, sigma=4.0)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    assert match_color(src, ref, w, None) is src


def test_lowfreq_matching_keeps_detail():
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    detail = 0.1 * torch.sin(xx * 2.5)  # a fine pattern (period 2.5 px)
    src = (0.3 + detail).expand(3, 64, 64)
    ref = (0.6 + 0.002 * xx).expand(3, 64, 64)  # another colour, a gentle shading
    out = match_color(src, ref, torch.ones(64, 64), "lowfreq", sigma=6.0)
    inner = (slice(None), slice(16, 48), slice(16, 48))
    # the fine pattern is kept, the mean moves to ref's
    torch.testing.assert_close(
        (out - ref)[inner], detail.expand(3, 64, 64)[inner], atol=0.02, rtol=0
    )


def _ramp_canvas(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([30 + x + y, 200 - x, 40 + y], -1).astype(np.uint8)


@pytest.mark.parametrize("color", ["lowfreq", "meanstd", None])
def test_a_face_equal_to_the_background_leaves_the_image_unchanged(color):
    scale = 4
    to_aligned = similarity(2.5, -20.0, -20, -5)  # photo -> aligned frame
    canvas = _ramp_canvas(100, 110)
    # the face is the background seen through the alignment (a linear ramp stays exact)
    a = paste_matrix(to_aligned, scale)
    v, u = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    xy = apply_affine(a, torch.stack([u, v], -1).reshape(-1, 2).double()).reshape(128, 128, 2)
    x, y = xy[..., 0], xy[..., 1]
    face = torch.stack([30 + x + y, 200 - x, 40 + y]).float() / 255
    before = canvas.copy()
    box = paste_face(canvas, face, to_aligned, scale, color=color)
    assert box is not None
    x0, y0, x1, y1 = box
    assert 0 <= x0 < x1 <= 110 and 0 <= y0 < y1 <= 100 and (x1 - x0) * (y1 - y0) > 1000
    np.testing.assert_array_equal(canvas, before)


def test_paste_places_the_face_and_leaves_the_rest_alone():
    scale = 4
    to_aligned = similarity(2.0, 30.0, -30, 10)
    canvas = np.full((200, 240, 3), 50, np.uint8)
    before = canvas.copy()
    red = torch.tensor([1.0, 0.0, 0.0])[:, None, None].expand(3, 128, 128)
    box = paste_face(canvas, red, to_aligned, scale, color=None)
    # the aligned frame's centre (63.5, 70) (mask = 1 there) lands where the matrices say
    cx, cy = apply_affine(paste_matrix(to_aligned, scale), torch.tensor([[63.5, 70.0]]))[0]
    assert tuple(canvas[round(float(cy)), round(float(cx))]) == (255, 0, 0)
    x0, y0, x1, y1 = box
    outside = np.ones(canvas.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert (canvas[outside] == before[outside]).all()
    changed = (canvas != before).any(-1)
    assert changed.sum() > 0.3 * (x1 - x0) * (y1 - y0) * 0.5
    # feathered: some pixels are between the two colours
    r = canvas[..., 0].astype(int)
    assert ((r > 60) & (r < 245)).sum() > 50


def test_paste_outside_the_canvas_is_a_no_op():
    canvas = np.zeros((40, 40, 3), np.uint8)
    far = invert_affine(similarity(1.0, 0.0, 5000, 5000))  # aligned frame far to the right
    assert paste_face(canvas, torch.ones(3, 128, 128), far, 2) is None
    assert not canvas.any()


def test_paste_shrinks_large_sr_faces_without_aliasing():
    # a tiny face in a photo enlarged x1: the 128-px face is shrunk ~10x when pasted
    to_aligned = similarity(10.0, 0.0, -300, -200)
    canvas = np.full((80, 80, 3), 128, np.uint8)
    stripes = (torch.arange(128) % 2).float().expand(3, 128, 128)  # finest pattern, mean 0.5
    paste_face(canvas, stripes, to_aligned, 1, color=None)
    # antialiased: the stripes average to grey instead of aliasing into a pattern
    assert np.abs(canvas.astype(int) - 128).max() <= 12
