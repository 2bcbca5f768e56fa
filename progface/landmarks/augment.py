"""Geometric augmentation of faces together with their landmarks (for distillation).

A horizontal flip must also swap left and right landmarks (the subject's left eye becomes the
right one), so the 68-point iBUG mirror permutation is applied with it. Rotation, scale and
translation are one similarity warp about the image centre, applied to the image with
``grid_sample`` and to the points with the same matrix.

Points are (x, y) in pixel units with pixel centres on integers (see ``heatmaps.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["MIRROR_68", "flip_faces", "random_photometric", "random_similarity", "warp_faces"]


def _mirror_68() -> list[int]:
    pairs = [(i, 16 - i) for i in range(8)]  # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]  # eyebrows
    pairs += [(31, 35), (32, 34)]  # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lips
    perm = list(range(68))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


MIRROR_68: tuple[int, ...] = tuple(_mirror_68())


def flip_faces(images: Tensor, points: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Mirror faces left-right and relabel their 68 landmarks.

    Args:
        images: ``[B, C, H, W]``.
        points: ``[B, 68, 2]`` in pixels of ``images``.
        mask: ``[B]`` bool, which faces to flip (default: all).

    Returns:
        ``(images, points)`` with the selected faces mirrored: ``x -> W - 1 - x`` and the
        landmark order permuted by :data:`MIRROR_68`.
    """
    if points.shape[1] != len(MIRROR_68):
        raise ValueError(f"flip_faces needs 68-point landmarks, got {points.shape[1]}")
    w = images.shape[-1]
    flipped_pts = points[:, list(MIRROR_68)].clone()
    flipped_pts[..., 0] = (w - 1) - flipped_pts[..., 0]
    if mask is None:
        return images.flip(-1), flipped_pts
    m = mask.view(-1, 1, 1, 1)
    return torch.where(m, images.flip(-1), images), torch.where(
        mask.view(-1, 1, 1), flipped_pts, points
    )


def warp_faces(
    images: Tensor, points: Tensor, angle: Tensor, scale: Tensor, shift: Tensor
) -> tuple[Tensor, Tensor]:
    """Apply ``p' = s R(angle) (p - c) + c + shift`` to square faces and their points.

    Args:
        images: ``[B, C, S, S]``; sampled bilinearly, borders reflected.
        points: ``[B, N, 2]`` in pixels.
        angle: ``[B]`` radians (positive turns the face counter-clockwise on screen).
        scale: ``[B]`` zoom factors (> 1 enlarges the face).
        shift: ``[B, 2]`` translation in pixels.
    """
    b, _, h, w = images.shape
    if h != w:
        raise ValueError(f"warp_faces expects square images, got {h}x{w}")
    cos, sin = torch.cos(angle), torch.sin(angle)
    # forward matrix in pixel units; y points down, so this is a screen-CCW rotation for +angle
    rot = torch.stack((torch.stack((cos, sin), -1), torch.stack((-sin, cos), -1)), -2)
    fwd = rot * scale.view(b, 1, 1)
    centre = (w - 1) / 2.0
    new_points = (points - centre) @ fwd.transpose(1, 2) + centre + shift.view(b, 1, 2)
    # grid_sample needs the inverse map in normalised units (u = (2x + 1) / W - 1)
    inv = torch.linalg.inv(fwd)
    t = -(inv @ (shift.view(b, 2, 1) * (2.0 / w)))
    theta = torch.cat((inv, t), dim=2).to(images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    warped = F.grid_sample(
        images, grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )
    return warped, new_points


def random_similarity(
    images: Tensor,
    points: Tensor,
    *,
    flip: bool = True,
    max_angle_deg: float = 10.0,
    max_scale: float = 0.1,
    max_shift: float = 0.05,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Random flip (p = 0.5), rotation in ``±max_angle_deg``, zoom in ``1 ± max_scale`` and
    shift in ``±max_shift`` of the image side, per face. Returns ``(images, points)``."""
    b, _, _, w = images.shape
    dev = images.device

    def uniform(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=generator, device="cpu").to(dev) * 2 - 1

    if flip:
        mask = (torch.rand(b, generator=generator, device="cpu") < 0.5).to(dev)
        images, points = flip_faces(images, points, mask)
    angle = uniform(b) * math.radians(max_angle_deg)
    scale = 1 + uniform(b) * max_scale
    shift = uniform(b, 2) * (max_shift * w)
    if max_angle_deg == 0 and max_scale == 0 and max_shift == 0:
        return images, points
    return warp_faces(images, points, angle.to(images.dtype), scale.to(images.dtype), shift)


def random_photometric(
    images: Tensor,
    *,
    jitter: float = 0.0,
    degrade_prob: float = 0.0,
    min_side: int = 16,
    noise_std: float = 0.02,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Colour jitter and low-resolution degradation of faces ``[B, 3, S, S]`` in [0, 1].

    Per face: brightness, contrast and saturation each scaled by a factor in ``1 ± jitter``;
    then, with probability ``degrade_prob``, the face is shrunk to a side drawn in
    ``[min_side, S/2]`` (antialiased), enlarged back bicubically and given Gaussian noise of
    std up to ``noise_std``: the blur and noise of the SR outputs the network will see.
    Landmarks are unchanged (no geometry moves). Returns faces in [0, 1].
    """
    b, _, s, _ = images.shape
    dev, dtype = images.device, images.dtype

    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=generator, device="cpu").to(dev, dtype)

    out = images
    if jitter > 0:
        factors = 1 + (rand(b, 3) * 2 - 1) * jitter
        bright, contrast, sat = (factors[:, i].view(b, 1, 1, 1) for i in range(3))
        out = out * bright
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        out = (out - mean) * contrast + mean
        gray = (out * out.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        out = ((out - gray) * sat + gray).clamp(0, 1)
    if degrade_prob > 0 and s // 2 >= min_side:
        chosen = rand(b) < degrade_prob
        sides = torch.randint(min_side, s // 2 + 1, (b,), generator=generator).tolist()
        noise = torch.randn(out.shape, generator=generator).to(dev, dtype)
        degraded = []
        for i in range(b):
            if not bool(chosen[i]):
                degraded.append(out[i])
                continue
            small = F.interpolate(
                out[i : i + 1], size=(sides[i],) * 2, mode="bilinear", antialias=True
            )
            big = F.interpolate(small, size=(s, s), mode="bicubic", align_corners=False)
            std = float(rand(1)) * noise_std
            degraded.append((big[0] + noise[i] * std).clamp(0, 1))
        out = torch.stack(degraded)
    return out
