"""Normalised mean landmark error (NME).

``NME = mean_k ||p_k - g_k||_2 / d`` per image, with ``d`` either the image size (the Progressive
Face SR paper, Table 1: "d is the facial image size") or the inter-ocular distance (the distance
between the outer eye corners, points 36 and 45 of the 68-point iBUG scheme; the usual 300-W
normalisation). Values are fractions; multiply by 100 for percent.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["NORMALISATIONS", "OUTER_EYE_CORNERS", "inter_ocular_distance", "nme"]

OUTER_EYE_CORNERS = (36, 45)  # iBUG 68: outer corner of the subject's right and left eye
NORMALISATIONS = ("size", "inter_ocular")


def inter_ocular_distance(points: Tensor) -> Tensor:
    """Distance between the outer eye corners of 68-point landmarks ``[B, 68, 2]`` -> ``[B]``."""
    if points.dim() != 3 or points.shape[1] != 68 or points.shape[2] != 2:
        raise ValueError(
            f"inter-ocular normalisation needs 68-point landmarks [B, 68, 2], got "
            f"{list(points.shape)}"
        )
    a, b = OUTER_EYE_CORNERS
    return (points[:, a] - points[:, b]).norm(dim=-1)


def nme(
    pred: Tensor,
    target: Tensor,
    norm: str = "size",
    size: float | Tensor | None = None,
) -> Tensor:
    """Per-image normalised mean error of landmarks.

    Args:
        pred: predicted landmarks ``[B, N, 2]`` (x, y), in the same pixel frame as ``target``.
        target: reference landmarks ``[B, N, 2]``.
        norm: ``"size"`` (divide by ``size``, the image side in the frame of the points) or
            ``"inter_ocular"`` (divide by the target's outer-eye-corner distance; N = 68).
        size: image side in pixels, a number or a ``[B]`` tensor (required for ``"size"``).

    Returns:
        ``[B]`` NME per image (a fraction, not percent).
    """
    if pred.shape != target.shape or pred.dim() != 3 or pred.shape[-1] != 2:
        raise ValueError(
            f"pred and target must both be [B, N, 2], got {list(pred.shape)} and "
            f"{list(target.shape)}"
        )
    err = (pred.float() - target.float()).norm(dim=-1).mean(dim=-1)
    if norm == "size":
        if size is None:
            raise ValueError("norm='size' needs the image size")
        d = torch.as_tensor(size, dtype=err.dtype, device=err.device)
    elif norm == "inter_ocular":
        d = inter_ocular_distance(target.float())
    else:
        raise ValueError(
            f"unknown normalisation {norm!r}; choose one of {', '.join(NORMALISATIONS)}"
        )
    return err / d
