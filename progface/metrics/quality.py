"""Per-image full-reference quality metrics: PSNR, SSIM, MS-SSIM and Y-channel PSNR.

All functions take a batch of super-resolved images ``sr`` and targets ``hr`` of shape
``[B, 3, H, W]`` with values in ``[0, 1]`` (RGB), clamp both to ``[0, 1]`` (``[0, data_range]``)
inside, compute in float64 and return one value per image as a float64 tensor of shape ``[B]``.
They are the metrics of the ``standard`` evaluation protocol (see
:mod:`progface.metrics.protocols`). SSIM and MS-SSIM are progface's own implementation (on the
Gaussian SSIM maps of :mod:`progface.metrics.ssim_maps`), matching piq's ``ssim`` and
``multi_scale_ssim`` (tested against them to 1e-10); piq itself is only a test oracle.

MS-SSIM at 128 px: MS-SSIM with 5 scales needs ``H, W >= (kernel_size - 1) * 2**4 + 1``, i.e.
161 px with the usual 11x11 window (piq's rule, kept here). :func:`ms_ssim` therefore uses, by
default, the largest odd window that fits (:func:`ms_ssim_kernel_for`), which is 7 at 128 px.
Report it alongside results, e.g. ``f"MS-SSIM kernel {ms_ssim_kernel_for(128)} at 128 px"``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F

from progface.metrics._validation import check_image_pair, check_target_range
from progface.metrics.ssim_maps import gaussian_window_1d, ssim_maps

__all__ = [
    "MS_SSIM_LEVELS",
    "MS_SSIM_MAX_KERNEL",
    "MS_SSIM_WEIGHTS",
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
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Per-scale MS-SSIM exponents (Wang et al. 2003), finest scale first."""
MS_SSIM_LEVELS = len(MS_SSIM_WEIGHTS)
"""Number of MS-SSIM scales (5)."""
MS_SSIM_MAX_KERNEL = 11
"""Window used by MS-SSIM when the images are large enough (>= 161 px)."""
# SSIM constants (K1 L)**2 and (K2 L)**2 with K1 = 0.01, K2 = 0.03 and the data range L = 1
_C1 = 0.01**2
_C2 = 0.03**2
# SSIM and MS-SSIM run over chunks of about this many values (1 MiB in float64): their dozen
# intermediate maps then stay in cache, 2-3x faster on CPU than whole batches of 16 at 128 px
_CHUNK_VALUES = 2**17


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


def _ssim_window(kernel_size: int) -> torch.Tensor:
    """Odd Gaussian window: its outer product is piq's 2-D ``gaussian_filter`` kernel."""
    return gaussian_window_1d(kernel_size, SSIM_KERNEL_SIGMA)


def _in_chunks(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """``fn(x, y)`` (one value per image, ``[B]``) evaluated on a few images at a time."""
    per_chunk = max(1, _CHUNK_VALUES // x[0].numel())
    return torch.cat([fn(a, b) for a, b in zip(x.split(per_chunk), y.split(per_chunk))])


def _ssim_float64(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM ``[B]`` of two float64 ``[B, C, H, W]`` tensors in ``[0, 1]``."""
    ssim_map, _ = ssim_maps(x, y, _ssim_window(SSIM_KERNEL_SIZE), c1=_C1, c2=_C2)
    # the mean over all channels and positions = piq's mean over positions, then channels
    return ssim_map.mean(dim=(1, 2, 3))


def ssim(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Structural similarity of each image (Wang et al. 2004), on RGB.

    Gaussian window 11x11 with sigma 1.5, valid filtering (no padding) of each channel,
    ``C1 = 0.01**2``, ``C2 = 0.03**2`` (data range 1), averaged over the SSIM map and the three
    channels. This matches ``piq.ssim(kernel_size=11, kernel_sigma=1.5, data_range=1,
    downsample=False)`` (tested). piq's optional 1/f average-pool pre-downsampling
    (``downsample=True``, which acts from 384 px on) is not applied, as in the authors'
    evaluation, so the value does not depend on image size this way.

    Computed in float64, by measurement: with the separable window (22 taps instead of 121) and
    cache-sized chunks, 16 images of 128 px take about 31 ms on one CPU thread, against 23 ms in
    float32 and 68 ms for piq in float32; float32 moves the values by up to ~1e-7 (SSIM) and
    ~1.5e-6 (MS-SSIM) through the cancellation in ``sigma^2 = E[x^2] - mu^2``.

    Args:
        sr: Super-resolved images ``[B, 3, H, W]``, values in ``[0, 1]``; values outside are
            clamped. ``H, W >= 11``.
        hr: Targets ``[B, 3, H, W]``, values in ``[0, 1]``.

    Returns:
        float64 tensor ``[B]``, at most 1 (1 for identical images).
    """
    x, y = _prepare(sr, hr, 1.0, "ssim", min_size=SSIM_KERNEL_SIZE)
    return _in_chunks(_ssim_float64, x, y)


def _ms_ssim_min_size(kernel_size: int) -> int:
    return (kernel_size - 1) * 2 ** (MS_SSIM_LEVELS - 1) + 1


def ms_ssim_kernel_for(size: int) -> int:
    """Window side that :func:`ms_ssim` uses by default for images of a given size.

    5-scale MS-SSIM needs ``size >= (kernel_size - 1) * 16 + 1`` (piq's rule: the window must
    fit the coarsest scale); this returns the largest odd ``kernel_size <= 11`` that satisfies
    it: 11 from 161 px on, 9 for 129..160 px, 7 for 97..128 px (so **7 at 128 px**), 5 for
    65..96 px and 3 for 33..64 px.

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


def _halve(t: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling between MS-SSIM scales, piq's way.

    When H or W is odd, one row on top *and* one column on the left are first replicated (both,
    even if only one side is odd), so an odd side keeps its last row or column.
    """
    pad = max(t.shape[-2] % 2, t.shape[-1] % 2)
    if pad:
        t = F.pad(t, (pad, 0, pad, 0), mode="replicate")
    return F.avg_pool2d(t, kernel_size=2)


def _ms_ssim_float64(x: torch.Tensor, y: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """MS-SSIM ``[B]`` of two float64 ``[B, C, H, W]`` tensors in ``[0, 1]``."""
    window = _ssim_window(kernel_size)
    terms = []
    for scale, weight in enumerate(MS_SSIM_WEIGHTS):
        if scale > 0:
            x, y = _halve(x), _halve(y)
        ssim_map, cs_map = ssim_maps(x, y, window, c1=_C1, c2=_C2)
        last = scale == len(MS_SSIM_WEIGHTS) - 1
        # cs at the finer scales, SSIM at the coarsest; per (image, channel) means [B, C]
        term = (ssim_map if last else cs_map).mean(dim=(-2, -1))
        # a negative term would make the fractional power NaN: clip it to 0 first
        terms.append(term.clamp(min=0.0) ** weight)
    return torch.stack(terms).prod(dim=0).mean(dim=1)


def ms_ssim(sr: torch.Tensor, hr: torch.Tensor, kernel_size: int | None = None) -> torch.Tensor:
    """Multi-scale SSIM of each image (Wang et al. 2003), on RGB.

    5 scales, exponents :data:`MS_SSIM_WEIGHTS` (0.0448, 0.2856, 0.3001, 0.2363, 0.1333),
    Gaussian window with sigma 1.5, valid filtering, ``C1 = 0.01**2``, ``C2 = 0.03**2``. Between
    scales the images are 2x2 average-pooled, after replicating one row on top and one column on
    the left when H or W is odd. For each image and channel, the means of the cs map at scales
    1-4 and of the SSIM map at scale 5 are clipped to ``>= 0`` and raised to their weights; the
    product over scales is averaged over the channels. This matches
    ``piq.multi_scale_ssim(kernel_size, kernel_sigma=1.5, data_range=1)`` (tested). Computed in
    float64, for the reasons given in :func:`ssim`.

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
    return _in_chunks(partial(_ms_ssim_float64, kernel_size=kernel_size), x, y)
