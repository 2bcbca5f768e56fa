"""Per-image full-reference quality metrics: PSNR, SSIM, MS-SSIM and Y-channel PSNR.

All functions take a batch of super-resolved images ``sr`` and targets ``hr`` of shape
``[B, 3, H, W]`` with values in ``[0, 1]`` (RGB), clamp both to ``[0, 1]`` (``[0, data_range]``)
inside, compute in float64 and return one value per image as a float64 tensor of shape ``[B]``.
They are the metrics of the ``standard`` evaluation protocol (see
:mod:`progface.metrics.protocols`). SSIM and MS-SSIM are computed by ``piq``.

MS-SSIM at 128 px: piq's MS-SSIM (5 scales) needs ``H, W >= (kernel_size - 1) * 2**4 + 1``, i.e.
161 px with the usual 11x11 window. :func:`ms_ssim` therefore uses, by default, the largest odd
window that fits (:func:`ms_ssim_kernel_for`), which is 7 at 128 px. Report it alongside results,
e.g. ``f"MS-SSIM kernel {ms_ssim_kernel_for(128)} at 128 px"``.
"""

from __future__ import annotations

import torch

from progface.metrics._validation import check_image_pair, check_target_range

__all__ = [
    "MS_SSIM_LEVELS",
    "MS_SSIM_MAX_KERNEL",
    "SSIM_KERNEL_SIGMA",
    "SSIM_KERNEL_SIZE",
    "ms_ssim",
    "ms_ssim_kernel_for",
    "psnr",
    "ssim",
    "y_psnr",
]

SSIM_KERNEL_SIZE = 11
"""Side of the Gaussian SSIM window (Wang et al. 2004)."""
SSIM_KERNEL_SIGMA = 1.5
"""Standard deviation of the Gaussian SSIM window."""
MS_SSIM_LEVELS = 5
"""Number of scales of piq's MS-SSIM (weights 0.0448, 0.2856, 0.3001, 0.2363, 0.1333)."""
MS_SSIM_MAX_KERNEL = 11
"""Window used by MS-SSIM when the images are large enough (>= 161 px)."""


def _check_data_range(data_range: float) -> float:
    if isinstance(data_range, bool) or not isinstance(data_range, int | float):
        raise ValueError(f"data_range must be a positive number, got {data_range!r}")
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range!r}")
    return float(data_range)


def _prepare(
    sr: torch.Tensor, hr: torch.Tensor, data_range: float, what: str, min_size: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a pair, then return both as float64 clamped to ``[0, data_range]``."""
    data_range = _check_data_range(data_range)
    check_image_pair(sr, hr, channels=3, min_size=min_size, what=what)
    check_target_range(hr, data_range, what=what)
    x = sr.detach().to(torch.float64).clamp(0.0, data_range)
    y = hr.detach().to(torch.float64).clamp(0.0, data_range)
    return x, y


def _psnr_float64(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """PSNR per image of two float64 ``[B, C, H, W]`` tensors; ``+inf`` where they are equal."""
    mse = (x - y).pow(2).mean(dim=(1, 2, 3))
    # mse == 0 gives data_range**2 / 0 = +inf and log10(+inf) = +inf, without a warning.
    return 10.0 * torch.log10(data_range**2 / mse)


def psnr(sr: torch.Tensor, hr: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio of each image, on RGB.

    ``PSNR = 10 * log10(data_range**2 / MSE)`` with the MSE taken over the ``3 * H * W`` values
    of one image.

    Args:
        sr: Super-resolved images ``[B, 3, H, W]``, values in ``[0, data_range]``; values
            outside are clamped.
        hr: Targets ``[B, 3, H, W]``, values in ``[0, data_range]``.
        data_range: Peak value (1.0 for images in ``[0, 1]``).

    Returns:
        float64 tensor ``[B]`` in dB. An image identical to its target (MSE 0) gives ``+inf``;
        averaging code must handle it (the ``standard`` protocol caps it, see
        :data:`progface.metrics.protocols.PSNR_CAP_DB`).

    Raises:
        ValueError: On a bad shape, dtype, device, non-finite values, a target outside
            ``[0, data_range]`` or a non-positive ``data_range``.
    """
    x, y = _prepare(sr, hr, data_range, "psnr")
    return _psnr_float64(x, y, float(data_range))


def y_psnr(sr: torch.Tensor, hr: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """PSNR of each image on the luma channel Y.

    Y comes from :func:`kornia.color.rgb_to_ycbcr`, i.e. full-range (JPEG/BT.601)
    ``Y = 0.299 R + 0.587 G + 0.114 B`` with Y in ``[0, data_range]``. This is *not* MATLAB's
    ``rgb2ycbcr`` (studio range 16..235), which many SR papers use: MATLAB's Y spans 219/255 of
    the range, so its Y-PSNR is about 1.32 dB lower for the same images.

    Args:
        sr: Super-resolved images ``[B, 3, H, W]`` (RGB), values in ``[0, data_range]``; values
            outside are clamped.
        hr: Targets ``[B, 3, H, W]`` (RGB), values in ``[0, data_range]``.
        data_range: Peak value (1.0 for images in ``[0, 1]``).

    Returns:
        float64 tensor ``[B]`` in dB; ``+inf`` where the Y channels are identical.
    """
    from kornia.color import rgb_to_ycbcr

    x, y = _prepare(sr, hr, data_range, "y_psnr")
    return _psnr_float64(rgb_to_ycbcr(x)[:, :1], rgb_to_ycbcr(y)[:, :1], float(data_range))


def ssim(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Structural similarity of each image (Wang et al. 2004), on RGB, via ``piq.ssim``.

    Gaussian window 11x11 with sigma 1.5, valid filtering (no padding), K1 = 0.01, K2 = 0.03,
    averaged over the SSIM map and the three channels. piq's optional 1/f average-pool
    pre-downsampling (``downsample=True``, which acts from 384 px on) is switched off, as in the
    authors' evaluation, so the value does not depend on image size this way.

    Args:
        sr: Super-resolved images ``[B, 3, H, W]``, values in ``[0, 1]``; values outside are
            clamped. ``H, W >= 11``.
        hr: Targets ``[B, 3, H, W]``, values in ``[0, 1]``.

    Returns:
        float64 tensor ``[B]``, at most 1 (1 for identical images).
    """
    import piq

    x, y = _prepare(sr, hr, 1.0, "ssim", min_size=SSIM_KERNEL_SIZE)
    # piq in float32: 8x faster than float64 on CPU, within 1e-6 of it
    return piq.ssim(
        x.float(),
        y.float(),
        kernel_size=SSIM_KERNEL_SIZE,
        kernel_sigma=SSIM_KERNEL_SIGMA,
        data_range=1.0,
        reduction="none",
        downsample=False,
    ).double()


def _ms_ssim_min_size(kernel_size: int) -> int:
    return (kernel_size - 1) * 2 ** (MS_SSIM_LEVELS - 1) + 1


def ms_ssim_kernel_for(size: int) -> int:
    """Window side that :func:`ms_ssim` uses by default for images of a given size.

    piq's 5-scale MS-SSIM needs ``size >= (kernel_size - 1) * 16 + 1``; this returns the largest
    odd ``kernel_size <= 11`` that satisfies it: 11 from 161 px on, 9 for 129..160 px, 7 for
    97..128 px (so **7 at 128 px**), 5 for 65..96 px and 3 for 33..64 px.

    Args:
        size: The smaller of the image height and width, in pixels.

    Returns:
        An odd window size in ``{3, 5, 7, 9, 11}``.

    Raises:
        ValueError: If ``size`` is not an integer or is below 33 px (no window of at least 3 fits).
    """
    if isinstance(size, bool) or not isinstance(size, int):
        raise ValueError(f"size must be an int (pixels), got {size!r}")
    kernel = min(MS_SSIM_MAX_KERNEL, (size - 1) // 2 ** (MS_SSIM_LEVELS - 1) + 1)
    if kernel % 2 == 0:
        kernel -= 1
    if kernel < 3:
        raise ValueError(
            f"MS-SSIM with {MS_SSIM_LEVELS} scales needs images of at least "
            f"{_ms_ssim_min_size(3)} px (window 3), got {size} px"
        )
    return kernel


def ms_ssim(sr: torch.Tensor, hr: torch.Tensor, kernel_size: int | None = None) -> torch.Tensor:
    """Multi-scale SSIM of each image (Wang et al. 2003), on RGB, via ``piq.multi_scale_ssim``.

    5 scales, weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), Gaussian window with sigma 1.5.
    piq clips negative per-scale terms to 0 before the weighted product.

    Args:
        sr: Super-resolved images ``[B, 3, H, W]``, values in ``[0, 1]``; values outside are
            clamped.
        hr: Targets ``[B, 3, H, W]``, values in ``[0, 1]``.
        kernel_size: Odd window side. ``None`` picks ``ms_ssim_kernel_for(min(H, W))``: 11 from
            161 px on, **7 at 128 px**. Results with different windows are not comparable, so
            report the window with the numbers.

    Returns:
        float64 tensor ``[B]`` in ``[0, 1]`` (1 for identical images).

    Raises:
        ValueError: On bad inputs, an even or non-positive ``kernel_size``, or a window too large
            for the image size (it needs ``min(H, W) >= (kernel_size - 1) * 16 + 1``).
    """
    import piq

    check_image_pair(sr, hr, channels=3, what="ms_ssim")
    size = min(sr.shape[-2:])
    if kernel_size is None:
        kernel_size = ms_ssim_kernel_for(size)
    else:
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int):
            raise ValueError(f"ms_ssim: kernel_size must be an odd int, got {kernel_size!r}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"ms_ssim: kernel_size must be a positive odd int, got {kernel_size}")
        if size < _ms_ssim_min_size(kernel_size):
            raise ValueError(
                f"ms_ssim: window {kernel_size} needs images of at least "
                f"{_ms_ssim_min_size(kernel_size)} px, got {size} px; the largest window that "
                f"fits is given by ms_ssim_kernel_for({size})"
            )
    x, y = _prepare(sr, hr, 1.0, "ms_ssim")
    return piq.multi_scale_ssim(
        x.float(),  # float32, as in ssim()
        y.float(),
        kernel_size=kernel_size,
        kernel_sigma=SSIM_KERNEL_SIGMA,
        data_range=1.0,
        reduction="none",
    ).double()
