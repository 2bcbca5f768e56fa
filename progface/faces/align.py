"""5-point alignment of faces in photos into the framing the networks were trained on.

The networks see aligned CelebA faces: the 178x178 box (0, 20, 178, 198) of the 178x218
aligned image resized to 128 px (:mod:`progface.data.crop`, policy ``celeba``). The templates
below are where five landmarks sit in that 128-px frame on average, computed by
:func:`derive_templates` from the dlib 68-point labels of the 5,005 training faces whose labels
came from a detection (``landmarks_from == dlib_det``) in
``shared/data/faces/train/celeba/landmarks68.csv``::

    python -m progface.faces.align ../shared/data/faces/train/celeba/landmarks68.csv

Two point schemes (``Face.scheme``):

- ``standard``: eye centres (mean of points 36-41 and 42-47), nose tip (30), mouth corners (48,
  54), in that order; the image-left eye (the person's right eye) first. It is the order of
  MTCNN, RetinaFace and YuNet, so other detectors fit it.
- ``dlib5``: the order of dlib's ``shape_predictor_5_face_landmarks.dat``: corners of the
  image-right eye (outer, inner = 68-point 45, 42), of the image-left eye (outer, inner = 36,
  39) and the base of the nose (33). The correspondence was checked on 100 CelebA faces: each
  5-point output was nearest to these 68-point indices in at least 97 of 100 faces.

Coordinates are 0-based pixel coordinates with pixel centres at integers (dlib's and
``landmarks68.csv``'s convention), in the photo and in the aligned frame alike.

What reaches the network (``lr_crops``): the training LR is the paper's chain 128 -> 64 -> 32
-> 16 of an aligned 128-px face. A face of ``w`` px in a photo fills only ``128 * w / 63.1``
px of that frame (it becomes ``ALIGNED_FACE_WIDTH`` = 63.1 px wide), so it enters the chain at
the first stage it fills (:func:`chain_entry`: 128 for faces of 32 px and more, 64 from 16 px,
32 from 8 px, else 16): it is warped by the similarity transform straight into that frame
(bicubic; a face larger than the frame is first shrunk with antialiased bilinear, so the warp
never decimates), rounded to 8 bits, and the remaining stages make the 16-px input. A face
wider than about 8 px thus loses detail on the way to the 16-px input (the model sees 8 px
across the face), and a narrower one is enlarged into it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "ALIGNED_FACE_WIDTH",
    "ALIGNED_SIZE",
    "LR_SIZE",
    "TEMPLATES",
    "aligned_crops",
    "apply_affine",
    "derive_templates",
    "face_width",
    "invert_affine",
    "chain_entry",
    "lr_crops",
    "lr_from_aligned",
    "similarity_transform",
    "transform_scale",
]

ALIGNED_SIZE = 128
LR_SIZE = 16

# Mean positions over 5,005 CelebA training faces (dlib_det rows), 128-px aligned frame;
# regenerate with `python -m progface.faces.align PATH/landmarks68.csv`.
TEMPLATES: dict[str, np.ndarray] = {
    "standard": np.array(
        [[49.78, 66.48], [77.28, 66.50], [63.20, 82.47], [51.05, 95.39], [76.02, 95.38]],
        dtype=np.float64,
    ),
    "dlib5": np.array(
        [[82.68, 66.49], [71.62, 67.41], [44.42, 66.45], [55.42, 67.40], [63.30, 88.10]],
        dtype=np.float64,
    ),
}
# mean horizontal extent of the 68 points (jaw to jaw) in the aligned frame: a face "w px
# wide" in a photo means this width, measured the same way
ALIGNED_FACE_WIDTH = 63.11

# 68-point indices behind each scheme (a tuple = mean of those points)
SCHEME_POINTS: dict[str, list[tuple[int, ...]]] = {
    "standard": [tuple(range(36, 42)), tuple(range(42, 48)), (30,), (48,), (54,)],
    "dlib5": [(45,), (42,), (36,), (39,), (33,)],
}


def points_from_68(points68: np.ndarray, scheme: str = "standard") -> np.ndarray:
    """The 5 points of ``scheme`` from 68-point landmarks ``[..., 68, 2]`` -> ``[..., 5, 2]``."""
    pts = np.asarray(points68, dtype=np.float64)
    return np.stack([pts[..., list(idx), :].mean(-2) for idx in SCHEME_POINTS[scheme]], -2)


def derive_templates(csv_path: str | Path) -> dict[str, object]:
    """Recompute ``TEMPLATES`` and ``ALIGNED_FACE_WIDTH`` from a ``landmarks68.csv`` of aligned
    128-px faces (rows whose labels came from a detection, ``dlib_det``)."""
    from progface.data.landmarks_io import read_landmarks_csv

    records = read_landmarks_csv(csv_path)
    pts = np.stack([r.points for r in records.values() if r.source == "dlib_det"])
    if not len(pts):
        raise ValueError(f"{csv_path}: no rows with landmarks_from == dlib_det")
    out: dict[str, object] = {name: points_from_68(pts, name).mean(0) for name in SCHEME_POINTS}
    out["face_width"] = float((pts[..., 0].max(1) - pts[..., 0].min(1)).mean())
    out["faces"] = len(pts)
    return out


# --- similarity transforms -------------------------------------------------------------------


def similarity_transform(src, dst, weights=None) -> Tensor:
    """Least-squares similarity (Umeyama: scale, rotation, translation; no reflection) taking
    points ``src`` to ``dst``.

    ``src`` [N, 2] or [B, N, 2]; ``dst`` the same or [N, 2] shared by the batch; ``weights``
    [N] or [B, N] (optional). Returns float64 matrices [B, 2, 3] (or [2, 3] for unbatched
    input) with ``dst ~ M[:, :2] @ src + M[:, 2]``. In 2-D the optimum is closed-form: with
    centred points, ``s cos(a) = sum(src . dst) / sum(|src|^2)`` and ``s sin(a) =
    sum(src x dst) / sum(|src|^2)``, which is a rotation by construction.
    """
    src_t = torch.as_tensor(np.asarray(src) if not isinstance(src, Tensor) else src)
    dst_t = torch.as_tensor(np.asarray(dst) if not isinstance(dst, Tensor) else dst)
    src_t, dst_t = src_t.to(torch.float64), dst_t.to(torch.float64)
    single = src_t.ndim == 2
    if single:
        src_t = src_t[None]
    if dst_t.ndim == 2:
        dst_t = dst_t[None].expand(src_t.shape[0], -1, -1)
    if src_t.shape != dst_t.shape or src_t.shape[-1] != 2 or src_t.shape[-2] < 2:
        raise ValueError(
            f"similarity_transform: src {tuple(src_t.shape)} and dst {tuple(dst_t.shape)} must "
            "both be [N, 2] or [B, N, 2] with N >= 2"
        )
    if weights is None:
        w = torch.ones(src_t.shape[:2], dtype=torch.float64)
    else:
        w = torch.as_tensor(np.asarray(weights), dtype=torch.float64).expand(src_t.shape[:2])
    w = w / w.sum(1, keepdim=True)
    mu_s = (w[..., None] * src_t).sum(1)
    mu_d = (w[..., None] * dst_t).sum(1)
    s, d = src_t - mu_s[:, None], dst_t - mu_d[:, None]
    var = (w * (s**2).sum(-1)).sum(1)
    if bool((var <= 1e-12).any()):
        raise ValueError("similarity_transform: the source points coincide")
    a = (w * (s * d).sum(-1)).sum(1) / var
    b = (w * (s[..., 0] * d[..., 1] - s[..., 1] * d[..., 0])).sum(1) / var
    rot = torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], -2)  # [B, 2, 2]
    t = mu_d - (rot @ mu_s[..., None])[..., 0]
    m = torch.cat([rot, t[..., None]], -1)
    return m[0] if single else m


def invert_affine(m: Tensor) -> Tensor:
    """Inverse of affine matrices [..., 2, 3]."""
    a, t = m[..., :2], m[..., 2:]
    inv = torch.linalg.inv(a)
    return torch.cat([inv, -inv @ t], -1)


def compose(outer: Tensor, inner: Tensor) -> Tensor:
    """``outer o inner`` for affine matrices [..., 2, 3] (apply ``inner`` first)."""
    a = outer[..., :2] @ inner[..., :2]
    t = outer[..., :2] @ inner[..., 2:] + outer[..., 2:]
    return torch.cat([a, t], -1)


def apply_affine(m: Tensor, points) -> Tensor:
    """Points [..., N, 2] through affine matrices [..., 2, 3]."""
    p = torch.as_tensor(np.asarray(points) if not isinstance(points, Tensor) else points)
    p = p.to(m.dtype)
    return p @ m[..., :2].transpose(-1, -2) + m[..., 2][..., None, :]


def transform_scale(m: Tensor) -> Tensor:
    """The scale of similarity matrices [..., 2, 3] (sqrt of the determinant)."""
    return torch.linalg.det(m[..., :2]).abs().sqrt()


def face_width(m: Tensor) -> Tensor:
    """Width in photo pixels (jaw to jaw, as ``ALIGNED_FACE_WIDTH``) of the face that the
    photo -> aligned-frame matrix ``m`` aligns."""
    return ALIGNED_FACE_WIDTH / transform_scale(m)


def pixel_scale_matrix(sx: float, sy: float, dtype=torch.float64) -> Tensor:
    """The affine map between the pixel grids of an image and its resize by (sx, sy) with
    image edges on image edges (``align_corners=False``): ``x' = (x + 0.5) * sx - 0.5``."""
    return torch.tensor([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]], dtype=dtype)


def _writable(arr: np.ndarray) -> np.ndarray:
    """A contiguous, writable array (torch warns on read-only ones, e.g. from PIL)."""
    arr = np.ascontiguousarray(arr)
    return arr if arr.flags.writeable else arr.copy()


def _as_float_chw(photo) -> Tensor:
    """uint8 HxWx3 array / [3,H,W] uint8 or float tensor -> float32 [3, H, W] in [0, 1]."""
    if isinstance(photo, np.ndarray):
        photo = torch.from_numpy(_writable(photo)).permute(2, 0, 1)
    if photo.dtype == torch.uint8:
        return photo.float().div_(255)
    return photo.float()


def _region(m_inv: Tensor, size: int, margin: float = 2.0) -> tuple[int, int, int, int]:
    """Photo box (x0, y0, x1, y1), exclusive end, that the aligned frame's corners map to."""
    corners = torch.tensor(
        [[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]],
        dtype=m_inv.dtype,
    )
    p = apply_affine(m_inv, corners)
    x0, y0 = (p.min(0).values - margin).floor().long().tolist()
    x1, y1 = (p.max(0).values + margin).ceil().long().tolist()
    return x0, y0, x1 + 1, y1 + 1


def aligned_crops(
    photo, matrices: Tensor, size: int = ALIGNED_SIZE, mode: str = "bicubic"
) -> Tensor:
    """Warp the faces of one photo into the aligned frame: ``[F, 3, size, size]`` in [0, 1].

    ``photo``: uint8 HxWx3 array or [3, H, W] tensor (uint8, or float in [0, 1]);
    ``matrices``: [F, 2, 3] photo -> aligned-frame transforms (``similarity_transform`` of the
    detected points to the template, scaled by ``size / 128``). Each face's photo region is cut
    out (pixels outside the photo repeat its edge), shrunk with antialiased bilinear when the
    face is larger than the frame, and all faces are warped in one batched kornia
    ``warp_affine`` (``mode``: bicubic by default, border padding). Bicubic because small
    faces are resampled at about their own resolution: on held-out CelebA faces shrunk to
    16 px, warping them with bilinear cost the network 0.4 dB more than bicubic.
    """
    import torch.nn.functional as F
    from kornia.geometry.transform import warp_affine

    img = _as_float_chw(photo)
    _, h, w = img.shape
    m = torch.as_tensor(matrices, dtype=torch.float64).reshape(-1, 2, 3)
    if not len(m):
        return img.new_zeros(0, 3, size, size)
    regions, mats = [], []
    for mi in m:
        x0, y0, x1, y1 = _region(invert_affine(mi), size)
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if cx1 <= cx0 or cy1 <= cy0:  # wholly outside: nearest edge pixel repeated
            cx0, cy0 = min(max(x0, 0), w - 1), min(max(y0, 0), h - 1)
            cx1, cy1 = cx0 + 1, cy0 + 1
        crop = img[:, cy0:cy1, cx0:cx1]
        pad = (cx0 - x0, x1 - cx1, cy0 - y0, y1 - cy1)
        if any(pad):
            crop = F.pad(crop[None], pad, mode="replicate")[0]
        shift = torch.tensor([[1.0, 0, x0], [0, 1.0, y0]], dtype=torch.float64)
        mr = compose(mi, shift)  # region pixels -> aligned frame
        scale = float(transform_scale(mi))
        if scale < 1.0:  # a face larger than the frame: shrink first, the warp then ~1:1
            rh, rw = crop.shape[-2:]
            nh, nw = max(2, round(rh * scale)), max(2, round(rw * scale))
            crop = F.interpolate(
                crop[None], size=(nh, nw), mode="bilinear", antialias=True, align_corners=False
            )[0]
            mr = compose(mr, invert_affine(pixel_scale_matrix(nw / rw, nh / rh)))
        regions.append(crop)
        mats.append(mr)
    hh = max(r.shape[-2] for r in regions)
    ww = max(r.shape[-1] for r in regions)
    batch = torch.stack(
        [
            F.pad(r[None], (0, ww - r.shape[-1], 0, hh - r.shape[-2]), mode="replicate")[0]
            for r in regions
        ]
    )
    out = warp_affine(
        batch,
        torch.stack(mats).float(),
        (size, size),
        mode=mode,
        padding_mode="border",
        align_corners=True,
    )
    return out.clamp_(0, 1)


CHAIN_SIZES = (128, 64, 32, 16)


def lr_from_aligned(aligned: Tensor, quantize: bool = True) -> Tensor:
    """The network input from aligned crops [B, 3, s, s] (s = 128, 64, 32 or 16): 8-bit
    rounding, then the rest of the paper's chain 128 -> 64 -> 32 -> 16 from s (with 8-bit
    rounding per stage when ``quantize``, as the training LR images were made)."""
    from progface.data.degrade import degrade_chain, quantize_uint8

    size = aligned.shape[-1]
    if size not in CHAIN_SIZES:
        raise ValueError(f"aligned crops must be {CHAIN_SIZES} px, got {size}")
    lr = quantize_uint8(aligned) if quantize else aligned
    rest = tuple(s for s in CHAIN_SIZES if s < size)
    return degrade_chain(lr, rest, quantize=quantize)[-1] if rest else lr


def chain_entry(matrix: Tensor) -> int:
    """Where a face enters the chain: the smallest of 128/64/32/16 px whose aligned frame has
    at least as many pixels as the photo gives it (16 when the photo gives fewer).

    A face of ``w`` px covers ``128 * w / ALIGNED_FACE_WIDTH`` photo px of the 128-px frame: a
    40-px face (81 px) enters at 128, a 20-px face (41 px) at 64, a 10-px face (20 px) at 32, a
    face of 7.9 px or less at 16 (the photo is then the LR itself, up to the similarity warp).
    Warping every face into 128 px and running the whole chain would first enlarge a small
    face up to 8x and then blur it with every stage's filter (``benchmarks/photo_faces.py
    --lr-check``: for held-out CelebA faces given as 16-px photos, the network's output was
    3.1 dB below its output from the ideal LR that way, 1.5 dB entering at 16 px with a bicubic
    warp; for 32-px photos 0.6 and 0.2 dB).
    """
    covered = ALIGNED_SIZE / float(transform_scale(torch.as_tensor(matrix)))
    for size in reversed(CHAIN_SIZES):
        if size >= covered - 1e-6:
            return size
    return ALIGNED_SIZE


def lr_crops(photo, matrices: Tensor, entry: int | None = None, mode: str = "bicubic") -> Tensor:
    """The network inputs [F, 3, 16, 16] of the faces of one photo: each face is warped into
    the aligned frame at its :func:`chain_entry` size (or at ``entry`` px for all), then
    degraded by the rest of the chain (:func:`lr_from_aligned`). ``matrices``: [F, 2, 3]
    photo -> 128-px aligned frame; ``mode``: the warp's interpolation."""
    m = torch.as_tensor(matrices, dtype=torch.float64).reshape(-1, 2, 3)
    out = torch.zeros(len(m), 3, LR_SIZE, LR_SIZE)
    entries = [entry or chain_entry(mi) for mi in m]
    for size in sorted(set(entries)):
        idx = [i for i, e in enumerate(entries) if e == size]
        k = size / ALIGNED_SIZE
        scaled = torch.stack([compose(pixel_scale_matrix(k, k), m[i]) for i in idx])
        out[idx] = lr_from_aligned(aligned_crops(photo, scaled, size=size, mode=mode))
    return out


def _main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: python -m progface.faces.align PATH/landmarks68.csv")
    got = derive_templates(argv[0])
    print(f"# from {got['faces']} faces of {argv[0]}")
    for name in SCHEME_POINTS:
        rows = ", ".join(f"[{x:.2f}, {y:.2f}]" for x, y in got[name])
        print(f'"{name}": [{rows}],')
    print(f"ALIGNED_FACE_WIDTH = {got['face_width']:.2f}")


if __name__ == "__main__":
    _main(sys.argv[1:])
