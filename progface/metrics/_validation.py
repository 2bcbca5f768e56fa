"""Input checks shared by the metric functions and the evaluation protocols.

Every check raises :class:`ValueError` with a message that names the argument, what was
expected and what was received, so that a wrong call fails before any arithmetic runs.
"""

from __future__ import annotations

import torch

__all__ = ["check_image_pair", "check_target_range"]

# Slack allowed on the target's [0, data_range] range, for targets produced by float arithmetic.
_TARGET_RANGE_TOL = 1e-3


def check_image_pair(
    sr: torch.Tensor,
    hr: torch.Tensor,
    *,
    channels: int | None = 3,
    min_size: int = 1,
    what: str = "",
) -> None:
    """Check a prediction/target pair of image batches.

    Args:
        sr: Super-resolved (predicted) images, expected shape ``[B, C, H, W]``.
        hr: High-resolution target images, same shape as ``sr``.
        channels: Required number of channels ``C``; ``None`` accepts any.
        min_size: Smallest allowed ``H`` and ``W``.
        what: Name of the calling metric, used as a prefix in error messages.

    Raises:
        ValueError: If an argument is not a tensor, is not 4-D, is not floating point, the two
            shapes or devices differ, the channel count or spatial size is wrong, the batch is
            empty, or a value is NaN or infinite.
    """
    prefix = f"{what}: " if what else ""
    for name, t in (("sr", sr), ("hr", hr)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{prefix}{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(
                f"{prefix}{name} must be a 4-D tensor [B, C, H, W], got {t.dim()}-D tensor "
                f"of shape {tuple(t.shape)}"
            )
        if not t.is_floating_point():
            raise ValueError(
                f"{prefix}{name} must be a floating-point tensor with values in [0, 1], got "
                f"dtype {t.dtype} (convert uint8 images with x.float() / 255)"
            )
    if sr.shape != hr.shape:
        raise ValueError(
            f"{prefix}sr and hr must have the same shape, got {tuple(sr.shape)} and "
            f"{tuple(hr.shape)}"
        )
    if sr.device != hr.device:
        raise ValueError(
            f"{prefix}sr and hr must be on the same device, got {sr.device} and {hr.device}"
        )
    b, c, h, w = sr.shape
    if b == 0:
        raise ValueError(f"{prefix}empty batch: shape {tuple(sr.shape)}")
    if channels is not None and c != channels:
        raise ValueError(
            f"{prefix}expected {channels}-channel images [B, {channels}, H, W], got {c} channels "
            f"(shape {tuple(sr.shape)})"
        )
    if min(h, w) < min_size:
        raise ValueError(
            f"{prefix}images must be at least {min_size}x{min_size} px, got {h}x{w} px"
        )
    for name, t in (("sr", sr), ("hr", hr)):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{prefix}{name} contains NaN or infinite values")


def check_target_range(hr: torch.Tensor, data_range: float = 1.0, *, what: str = "") -> None:
    """Check that target images lie in ``[0, data_range]`` (with a small tolerance).

    Targets come from image files, so a value outside the range almost always means the images
    were passed in ``[-1, 1]`` (network range) or ``[0, 255]`` instead of ``[0, 1]``.

    Args:
        hr: Target images, any shape.
        data_range: Upper end of the expected value range.
        what: Name of the calling metric, used as a prefix in error messages.

    Raises:
        ValueError: If a value lies outside ``[-tol, data_range + tol]``.
    """
    prefix = f"{what}: " if what else ""
    lo = float(hr.min())
    hi = float(hr.max())
    tol = _TARGET_RANGE_TOL * data_range
    if lo < -tol or hi > data_range + tol:
        raise ValueError(
            f"{prefix}hr must have values in [0, {data_range:g}], got min {lo:.4g} and max "
            f"{hi:.4g}; map [-1, 1] images with 0.5 * x + 0.5 and [0, 255] images with x / 255"
        )
