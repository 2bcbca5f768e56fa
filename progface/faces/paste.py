"""Paste super-resolved faces back into the photo enlarged by ``scale``.

- :func:`enlarge`: the background, the whole photo enlarged by an integer ``scale`` with any
  callable (bicubic by default), tile by tile with a halo so memory stays bounded and the tiles
  join seamlessly (for bicubic the result equals enlarging the whole photo at once, up to
  float summation order: +-1 level in about 0.05% of pixels);
- :func:`face_mask`: a feathered mask in the aligned 128-px frame (an ellipse over the face or
  the whole frame), exactly 1 inside, 0 at and beyond the frame's edge, with a smoothstep ramp
  (an eroded, blurred shape in closed form);
- :func:`match_color`: colour matching of the SR face to the enlarged photo under the mask
  (``lowfreq``: the SR face keeps its detail and takes the photo's low frequencies; ``meanstd``;
  ``mean``; ``none``);
- :func:`paste_face`: warps one SR face and its mask into the enlarged photo by the inverse of
  the alignment (kornia ``warp_affine``), matches colour and blends it in place.

Coordinates: a photo pixel x lands at ``(x + 0.5) * scale - 0.5`` in the enlarged photo (image
edges on image edges, as ``F.interpolate(..., align_corners=False)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from progface.faces.align import (
    ALIGNED_SIZE,
    _writable,
    apply_affine,
    compose,
    invert_affine,
    pixel_scale_matrix,
    transform_scale,
)

__all__ = ["BACKGROUNDS", "enlarge", "face_mask", "match_color", "paste_face", "paste_matrix"]

Background = Callable[[Tensor, int], Tensor]


def _interp(mode: str) -> Background:
    def resize(x: Tensor, scale: int) -> Tensor:
        size = (x.shape[-2] * scale, x.shape[-1] * scale)
        if mode == "nearest":
            return F.interpolate(x, size=size, mode="nearest")
        return F.interpolate(x, size=size, mode=mode, align_corners=False)

    resize.__name__ = mode
    return resize


# background methods by name; any callable (x [1, 3, h, w] in [0, 1], scale) -> [1, 3, h*s, w*s]
BACKGROUNDS: dict[str, Background] = {m: _interp(m) for m in ("bicubic", "bilinear", "nearest")}


def enlarge(
    photo: np.ndarray,
    scale: int,
    background: str | Background = "bicubic",
    tile: int = 256,
    halo: int = 4,
) -> np.ndarray:
    """The photo (uint8 HxWx3) enlarged ``scale`` times as uint8 [H*s, W*s, 3].

    ``background`` runs on tiles of ``tile`` photo pixels with ``halo`` pixels of context on
    each side (cropped off afterwards); a method that looks further than ``halo`` pixels needs a
    larger one. Peak memory: the output plus a few float tiles.
    """
    fn = BACKGROUNDS[background] if isinstance(background, str) else background
    h, w = photo.shape[:2]
    s = int(scale)
    out = np.empty((h * s, w * s, 3), np.uint8)
    src = torch.from_numpy(_writable(photo)).permute(2, 0, 1)
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            y0, x0 = max(0, y - halo), max(0, x - halo)
            y1, x1 = min(h, y + tile + halo), min(w, x + tile + halo)
            part = src[:, y0:y1, x0:x1].float().div(255)[None]
            big = fn(part, s)[0]
            oy, ox = (y - y0) * s, (x - x0) * s
            th, tw = (min(y + tile, h) - y) * s, (min(x + tile, w) - x) * s
            big = big[:, oy : oy + th, ox : ox + tw]
            pixels = big.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0)
            out[y * s : y * s + th, x * s : x * s + tw] = pixels.numpy()
    return out


def _smoothstep(t: Tensor) -> Tensor:
    t = t.clamp(0, 1)
    return t * t * (3 - 2 * t)


def face_mask(
    size: int = ALIGNED_SIZE,
    shape: str = "ellipse",
    feather: float | None = None,
    inset: float | None = None,
) -> Tensor:
    """A feathered paste mask [size, size] in [0, 1] in the aligned frame.

    ``rect``: the whole frame, 0 at ``inset`` px from its edges (default 2/128 of the size),
    rising to 1 over ``feather`` px (default 16/128). ``ellipse`` (default): additionally 0
    outside an ellipse over the face and forehead (centre (63.5, 70), semi-axes 50 x 56 in the
    128-px frame, scaled with ``size``), 1 from ``feather`` px inside its edge. Exactly 1 at
    the face centre.
    """
    k = size / ALIGNED_SIZE
    feather = 16.0 * k if feather is None else float(feather)
    inset = 2.0 * k if inset is None else float(inset)
    c = torch.arange(size, dtype=torch.float64)
    edge = torch.minimum(c - (-0.5), (size - 0.5) - c)  # distance to the frame's edge
    ramp = _smoothstep((edge - inset) / feather)
    mask = ramp[:, None] * ramp[None, :]
    if shape == "rect":
        return mask.float()
    if shape != "ellipse":
        raise ValueError(f"mask shape must be 'ellipse' or 'rect', got {shape!r}")
    cx, cy, a, b = 63.5 * k, 70.0 * k, 50.0 * k, 56.0 * k
    dy, dx = (c[:, None] - cy), (c[None, :] - cx)
    rho = torch.sqrt(dx**2 + dy**2)
    r = torch.sqrt((dx / a) ** 2 + (dy / b) ** 2)
    # distance to the ellipse along the ray from its centre (exact on the axes)
    radius = torch.where(r > 0, rho / r.clamp_min(1e-12), torch.full_like(r, min(a, b)))
    inside = _smoothstep((radius - rho) / feather)
    return (mask * inside).float()


def _weighted_stats(x: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    total = w.sum().clamp_min(1e-12)
    mean = (x * w).sum((-2, -1)) / total
    var = (((x - mean[:, None, None]) ** 2) * w).sum((-2, -1)) / total
    return mean, var.clamp_min(0).sqrt()


def _gaussian_lowpass(x: Tensor, w: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
    """Weighted Gaussian mean of ``x`` [C, h, w] under weights ``w`` [h, w] and the smoothed
    weights, on a grid pooled by ~sigma/2 (the result is smooth, so nothing is lost)."""
    from kornia.filters import gaussian_blur2d

    h, wd = x.shape[-2:]
    d = max(1, int(sigma // 2))
    both = torch.cat([x * w, w[None]], 0)[None]
    if d > 1:
        both = F.avg_pool2d(both, d, ceil_mode=True, count_include_pad=False)
    s = sigma / d
    ks = 2 * math.ceil(3 * s) + 1
    blurred = gaussian_blur2d(both, (ks, ks), (s, s), border_type="replicate")
    if d > 1:
        blurred = F.interpolate(
            blurred,
            size=(blurred.shape[-2] * d, blurred.shape[-1] * d),
            mode="bilinear",
            align_corners=False,
        )[..., :h, :wd]
    return blurred[0, :-1], blurred[0, -1]


def match_color(
    src: Tensor, ref: Tensor, weight: Tensor, mode: str | None = "lowfreq", sigma: float = 8.0
) -> Tensor:
    """Colour-match ``src`` [3, h, w] to ``ref`` [3, h, w] where ``weight`` [h, w] > 0.

    ``mean``: shift each channel's weighted mean to ``ref``'s; ``meanstd``: also scale its
    weighted std to ``ref``'s (a flat ``src`` is only shifted); ``lowfreq``: add the difference
    of the two images' weighted Gaussian means (std ``sigma`` px), so ``src`` keeps its detail
    and takes ``ref``'s colour and shading at scales above ``sigma``; ``none``/None: unchanged.
    """
    if mode in (None, "none"):
        return src
    w = weight.to(src.dtype)
    if mode in ("mean", "meanstd"):
        mu_s, sd_s = _weighted_stats(src, w)
        mu_r, sd_r = _weighted_stats(ref, w)
        gain = torch.ones_like(sd_s)
        if mode == "meanstd":
            gain = torch.where(sd_s > 1e-6, sd_r / sd_s.clamp_min(1e-6), gain)
        return (src - mu_s[:, None, None]) * gain[:, None, None] + mu_r[:, None, None]
    if mode == "lowfreq":
        low_s, ws = _gaussian_lowpass(src, w, sigma)
        low_r, _ = _gaussian_lowpass(ref, w, sigma)
        ok = ws > 1e-6
        diff = torch.where(ok, (low_r - low_s) / ws.clamp_min(1e-6), torch.zeros_like(low_r))
        return src + diff
    raise ValueError(f"colour matching must be lowfreq, meanstd, mean or none, got {mode!r}")


def paste_matrix(matrix: Tensor, scale: int) -> Tensor:
    """Aligned frame -> enlarged photo, from the photo -> aligned frame ``matrix`` [2, 3]."""
    s = float(scale)
    return compose(pixel_scale_matrix(s, s), invert_affine(torch.as_tensor(matrix).double()))


def paste_face(
    canvas: np.ndarray,
    sr: Tensor,
    matrix: Tensor,
    scale: int,
    mask: Tensor | None = None,
    color: str | None = "lowfreq",
    color_sigma: float = 8.0,
) -> tuple[int, int, int, int] | None:
    """Blend one SR face into ``canvas`` (the enlarged photo, uint8 [H*s, W*s, 3]) in place.

    ``sr``: [3, n, n] in [0, 1] in the aligned frame (n = 128 for the networks); ``matrix``:
    photo -> aligned-frame [2, 3] for a 128-px frame; ``mask``: [n, n] (default
    ``face_mask(n)``); ``color``/``color_sigma``: :func:`match_color`, ``sigma`` in aligned-frame
    pixels (8 = one pixel of the 16-px LR). Returns the canvas box (x0, y0, x1, y1) it changed,
    or None when the face lies outside the canvas.
    """
    from kornia.geometry.transform import warp_affine

    n = sr.shape[-1]
    mask = face_mask(n) if mask is None else mask
    a = paste_matrix(matrix, scale)
    if n != ALIGNED_SIZE:  # an n-px frame is the 128-px frame resized
        a = compose(a, pixel_scale_matrix(ALIGNED_SIZE / n, ALIGNED_SIZE / n))
    corners = torch.tensor(
        [[-0.5, -0.5], [n - 0.5, -0.5], [-0.5, n - 0.5], [n - 0.5, n - 0.5]], dtype=torch.float64
    )
    p = apply_affine(a, corners)
    hh, ww = canvas.shape[:2]
    x0, y0 = (max(0, v) for v in p.min(0).values.floor().long().tolist())
    x1 = min(ww, int(p[:, 0].max().ceil()) + 1)
    y1 = min(hh, int(p[:, 1].max().ceil()) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    src = torch.cat([sr.detach().float().cpu(), mask.float().cpu()[None]], 0)[None]
    k = float(transform_scale(a))  # canvas px per aligned px
    if k < 1:  # shrinking: antialias first, then warp ~1:1
        m = max(2, round(n * k))
        src = F.interpolate(src, size=(m, m), mode="bilinear", antialias=True, align_corners=False)
        a = compose(a, invert_affine(pixel_scale_matrix(m / n, m / n)))
    a_tile = a.clone()
    a_tile[:, 2] -= torch.tensor([x0, y0], dtype=a.dtype)
    warped = warp_affine(
        src,
        a_tile[None].float(),
        (y1 - y0, x1 - x0),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    )[0]
    face, m_tile = warped[:3], warped[3].clamp(0, 1)
    region = canvas[y0:y1, x0:x1]
    ref = torch.from_numpy(np.ascontiguousarray(region)).permute(2, 0, 1).float().div(255)
    face = match_color(face, ref, m_tile, color, sigma=color_sigma * k)
    out = m_tile * face + (1 - m_tile) * ref
    changed = m_tile > 0
    pixels = out.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    region[changed.numpy()] = pixels[changed.numpy()]
    return (x0, y0, x1, y1)
