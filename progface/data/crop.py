"""Crop policies that turn an HR face photo into a square before it is resized to 128 px.

- ``celeba``: the paper's box (left, top, right, bottom) = (0, 20, 178, 198) of an aligned
  178x218 CelebA image (torchvision ``CenterCrop(178)`` on that size);
- ``center``: the largest centred square (offsets rounded down);
- ``none``: the image must already be square.
"""

from __future__ import annotations

from pathlib import Path

import torch

from progface.data.errors import ImageError

__all__ = ["CELEBA_BOX", "CROP_POLICIES", "apply_crop", "crop_box", "map_points"]

CROP_POLICIES = ("celeba", "center", "none")
CELEBA_SIZE = (178, 218)  # width, height of aligned CelebA (img_align_celeba)
CELEBA_BOX = (0, 20, 178, 198)  # left, top, right, bottom


def crop_box(
    width: int, height: int, policy: str, path: str | Path | None = None
) -> tuple[int, int, int, int]:
    """The square box (left, top, right, bottom) that ``policy`` keeps of a WxH image.

    ``path`` only names the image in errors (``ImageError``); an unknown policy is a
    ``ValueError``.
    """
    where = Path(path) if path is not None else Path("<image>")
    if policy == "celeba":
        if (width, height) != CELEBA_SIZE:
            raise ImageError(
                where,
                f"crop 'celeba' expects a 178x218 aligned CelebA image, got {width}x{height}",
            )
        return CELEBA_BOX
    if policy == "center":
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        return (left, top, left + side, top + side)
    if policy == "none":
        if width != height:
            raise ImageError(where, f"not square ({width}x{height}): use --crop center")
        return (0, 0, width, height)
    raise ValueError(f"unknown crop policy {policy!r}; choose one of {', '.join(CROP_POLICIES)}")


def apply_crop(image: torch.Tensor, policy: str, path: str | Path | None = None) -> torch.Tensor:
    """Crop ``image`` [3, H, W] (any range) to a square [3, S, S] following ``policy``."""
    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"apply_crop expects a tensor [C, H, W], got {shape}")
    left, top, right, bottom = crop_box(image.shape[2], image.shape[1], policy, path)
    return image[:, top:bottom, left:right]


def map_points(points: torch.Tensor, box: tuple[int, int, int, int], size: int) -> torch.Tensor:
    """Move points [..., 2] (x, y) of the original image into the ``size`` px crop of ``box``.

    Coordinates are 0-based pixel indices (pixel centres at integers), the convention of
    ``landmarks68.csv`` and of dlib; the resize keeps image edges on image edges
    (``align_corners=False``), so ``x' = (x - left + 0.5) * size / side - 0.5``.
    """
    left, top, right, bottom = box
    scale = torch.tensor(
        [size / (right - left), size / (bottom - top)], dtype=points.dtype, device=points.device
    )
    offset = torch.tensor([left, top], dtype=points.dtype, device=points.device)
    return (points - offset + 0.5) * scale - 0.5
