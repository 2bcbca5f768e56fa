"""Flip with landmark relabelling; the similarity warp moves image and points together."""

from __future__ import annotations

import math

import torch

from progface.landmarks.augment import MIRROR_68, flip_faces, random_similarity, warp_faces
from progface.landmarks.heatmaps import decode_heatmaps, render_heatmaps


def test_mirror_table_is_an_involution_with_the_right_pairs():
    assert sorted(MIRROR_68) == list(range(68))
    assert all(MIRROR_68[MIRROR_68[i]] == i for i in range(68))
    assert MIRROR_68[0] == 16 and MIRROR_68[8] == 8  # jaw ends; chin stays
    assert MIRROR_68[36] == 45 and MIRROR_68[39] == 42  # outer and inner eye corners
    assert MIRROR_68[48] == 54 and MIRROR_68[51] == 51 and MIRROR_68[57] == 57  # mouth
    assert [i for i in range(68) if MIRROR_68[i] == i] == [8, 27, 28, 29, 30, 33, 51, 57, 62, 66]


def test_flip_moves_points_with_the_pixels():
    gen = torch.Generator().manual_seed(1)
    pts = 5 + torch.rand(2, 68, 2, generator=gen) * 50
    hm = render_heatmaps(pts, 64, sigma=1.0)
    flipped_hm, flipped_pts = flip_faces(hm, pts)
    # channel k of the flipped heatmaps is the mirror image of channel MIRROR_68[k]; the
    # decoded peak of that channel is the flipped point of that landmark
    decoded = decode_heatmaps(flipped_hm)[:, list(MIRROR_68)]
    assert (decoded - flipped_pts).abs().max() <= 0.25 + 1e-5
    assert torch.allclose(flipped_pts[:, 36, 0], 63 - pts[:, 45, 0])
    again_hm, again_pts = flip_faces(flipped_hm, flipped_pts)
    assert torch.equal(again_hm, hm) and torch.allclose(again_pts, pts)
    keep = torch.tensor([True, False])
    part_hm, part_pts = flip_faces(hm, pts, keep)
    assert torch.equal(part_hm[1], hm[1]) and torch.equal(part_pts[1], pts[1])
    assert torch.equal(part_pts[0], flipped_pts[0])


def test_warp_moves_points_with_the_pixels():
    pts = torch.tensor([[[40.3, 50.7], [90.2, 30.1], [64.0, 64.0]]])
    hm = render_heatmaps(pts, 128, sigma=2.0)
    angle, scale, shift = torch.tensor([0.3]), torch.tensor([1.1]), torch.tensor([[3.0, -5.0]])
    warped, moved = warp_faces(hm, pts, angle, scale, shift)
    assert (decode_heatmaps(warped) - moved).abs().max() <= 0.5
    # the formula by hand for (64, 64), half a pixel right of and below the centre (63.5, 63.5)
    c, s = math.cos(0.3), math.sin(0.3)
    want = [63.5 + 1.1 * 0.5 * (c + s) + 3.0, 63.5 + 1.1 * 0.5 * (c - s) - 5.0]
    assert torch.allclose(moved[0, 2], torch.tensor(want))
    # +angle turns the face counter-clockwise on screen (y down): a point right of the centre
    # moves up
    right = torch.tensor([[[100.0, 63.5]]])
    _, turned = warp_faces(
        hm[:, :1], right, torch.tensor([math.pi / 2]), torch.ones(1), torch.zeros(1, 2)
    )
    assert torch.allclose(turned, torch.tensor([[[63.5, 63.5 - 36.5]]]), atol=1e-4)


def test_random_similarity_is_seeded_and_consistent():
    pts = 30 + torch.rand(4, 68, 2, generator=torch.Generator().manual_seed(2)) * 60
    hm = render_heatmaps(pts, 128, sigma=2.0)
    a = random_similarity(hm, pts, generator=torch.Generator().manual_seed(5))
    b = random_similarity(hm, pts, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], pts)
    # heatmap channels are not relabelled by a flip (images have no landmark channels), so
    # check the warp's consistency without flips
    hm_w, pts_w = random_similarity(hm, pts, flip=False, generator=torch.Generator().manual_seed(5))
    inside = ((pts_w > 3) & (pts_w < 124)).all(-1)
    assert inside.float().mean() > 0.9
    assert (decode_heatmaps(hm_w) - pts_w).norm(dim=-1)[inside].max() < 0.8


def test_photometric_identity_jitter_by_hand_and_degradation():
    from progface.landmarks.augment import random_photometric

    faces = torch.rand(4, 3, 32, 32)
    assert torch.equal(random_photometric(faces), faces)  # nothing asked, nothing changed
    gen = torch.Generator().manual_seed(3)
    out = random_photometric(faces, jitter=0.2, generator=gen)
    # the factors are the first draws of the same generator: check face 0 by hand
    f = 1 + (torch.rand(4, 3, generator=torch.Generator().manual_seed(3)) * 2 - 1) * 0.2
    x = faces[0] * f[0, 0]
    x = (x - x.mean()) * f[0, 1] + x.mean()
    gray = (x * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0, keepdim=True)
    assert torch.allclose(out[0], ((x - gray) * f[0, 2] + gray).clamp(0, 1), atol=1e-6)
    # degradation of every face removes high frequencies (a checkerboard mostly vanishes)
    checker = (torch.arange(32).view(1, -1) + torch.arange(32).view(-1, 1)) % 2
    board = checker.float().expand(2, 3, 32, 32).clone()
    blurred = random_photometric(board, degrade_prob=1.0, noise_std=0.0, min_side=8,
                                 generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert blurred.shape == board.shape and 0 <= blurred.min() and blurred.max() <= 1
    assert (blurred - 0.5).abs().mean() < 0.1 < (board - 0.5).abs().mean()
