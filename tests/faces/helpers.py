"""Helpers for the photo tests: a synthetic aligned face, photos made from it, a fake detector."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

REPO = Path(__file__).resolve().parents[2]


def helen_dir() -> Path | None:
    """``../shared/data/photos/helen_train`` (or under ``$PROGFACE_SHARED``), None if absent."""
    root = Path(os.environ.get("PROGFACE_SHARED") or REPO.parent / "shared")
    path = root / "data" / "photos" / "helen_train"
    return path if (path / "landmarks68.csv").is_file() else None


def synthetic_face(size: int = 128, blur: float = 1.5) -> np.ndarray:
    """A smooth cartoon face (uint8 size x size x 3) in the aligned frame: eyes, nose and mouth
    at the ``standard`` template's points, on a shaded background."""
    from progface.faces.align import TEMPLATES

    k = size / 128
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = np.stack([90 + 60 * xx, 120 + 40 * yy, 150 - 50 * xx * yy], -1)
    img = Image.fromarray(base.astype(np.uint8))
    d = ImageDraw.Draw(img)
    d.ellipse([30 * k, 28 * k, 98 * k, 122 * k], fill=(210, 165, 140))
    (ex1, ey1), (ex2, ey2), (nx, ny), (mx1, my1), (mx2, my2) = TEMPLATES["standard"] * k
    for ex, ey in ((ex1, ey1), (ex2, ey2)):
        d.ellipse([ex - 6 * k, ey - 3 * k, ex + 6 * k, ey + 3 * k], fill=(250, 250, 250))
        d.ellipse([ex - 2.5 * k, ey - 2.5 * k, ex + 2.5 * k, ey + 2.5 * k], fill=(40, 30, 20))
    d.polygon(
        [(nx, ny - 14 * k), (nx - 5 * k, ny + 2 * k), (nx + 5 * k, ny + 2 * k)],
        fill=(180, 120, 100),
    )
    d.line(
        [(mx1, my1), ((mx1 + mx2) / 2, my1 + 3 * k), (mx2, my2)],
        fill=(150, 40, 50),
        width=max(1, round(3 * k)),
    )
    return np.array(img.filter(ImageFilter.GaussianBlur(blur * k)))


def similarity(scale: float, degrees: float, tx: float, ty: float) -> torch.Tensor:
    """[2, 3] float64: x' = scale * R(degrees) x + t."""
    a = np.deg2rad(degrees)
    c, s = scale * np.cos(a), scale * np.sin(a)
    return torch.tensor([[c, -s, tx], [s, c, ty]], dtype=torch.float64)


def photo_with_face(
    face: np.ndarray, aligned_to_photo: torch.Tensor, size=(96, 80), seed: int = 0
) -> np.ndarray:
    """A photo (uint8 HxWx3, size = (width, height)) with ``face`` (aligned frame) warped in by
    ``aligned_to_photo`` over a smooth random background; made at 4x and shrunk (antialiased),
    like a real small face."""
    from kornia.geometry.transform import warp_affine

    from progface.faces.align import compose, pixel_scale_matrix

    w, h = size
    up = 4
    rng = np.random.default_rng(seed)
    bg = rng.uniform(0, 1, (3, h // 8 + 2, w // 8 + 2)).astype(np.float32)
    bg = torch.nn.functional.interpolate(
        torch.from_numpy(bg)[None], size=(h * up, w * up), mode="bicubic", align_corners=False
    )[0].clamp(0, 1)
    m = compose(pixel_scale_matrix(up, up), aligned_to_photo)
    src = torch.from_numpy(np.ascontiguousarray(face)).permute(2, 0, 1).float()[None] / 255
    ones = torch.ones_like(src[:, :1])
    warped = warp_affine(
        torch.cat([src, ones], 1), m[None].float(), (h * up, w * up), align_corners=True
    )[0]
    img = warped[:3] + (1 - warped[3:]) * bg
    small = torch.nn.functional.interpolate(
        img[None], size=(h, w), mode="bilinear", antialias=True, align_corners=False
    )[0]
    return (small.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy().copy()


class FakeDetector:
    """Returns fixed faces (a test double for the detector protocol)."""

    name = "fake"

    def __init__(self, faces_per_call):
        self.faces = faces_per_call
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        return list(self.faces)
