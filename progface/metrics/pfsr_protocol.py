"""The authors' evaluation (``eval.py`` + ``ssim.py`` of Progressive Face SR), re-implemented.

This is the ``pfsr`` protocol. Its numbers are comparable with the paper's tables, not with the
``standard`` protocol (:mod:`progface.metrics.protocols`). It is written from a description of
the authors' code (the project's reference notes on it, section 9), not copied from it:

* inputs are SR and HR images in ``[0, 1]`` (the networks' ``[-1, 1]`` output mapped by
  ``0.5 * x + 0.5``), computed in **float64**, **not clamped and not quantised**;
* images are grouped into consecutive batches of 16 (the last one may be smaller) and **each
  batch is weighted equally** in the final means;
* PSNR per batch is ``10 * log10(1 / MSE)`` with the MSE over all ``B * 3 * H * W`` values of the
  batch (not the mean of per-image PSNRs);
* SSIM (:func:`pfsr_ssim`): Gaussian window of side ``min(11, H, W)`` and sigma 1.5, valid
  filtering per channel, ``C1 = (0.01 L)**2``, ``C2 = (0.03 L)**2`` with the dynamic range ``L``
  guessed from the prediction (2 instead of 1 when a predicted value is below -0.5);
* MS-SSIM (:func:`pfsr_msssim`): 5 levels, 2x2 average pooling, windows 11/11/11/11/8 at 128 px,
  per-level SSIM and cs averaged over the batch before exponentiation, and the authors' bug:
  the last level's SSIM is raised to ``4 * 0.1333`` instead of ``0.1333``.

Everything runs on the inputs' device (CPU included); nothing is hard-wired to CUDA.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from progface.metrics._validation import check_image_pair, check_target_range
from progface.metrics.ssim_maps import gaussian_window_1d, ssim_maps

__all__ = [
    "PFSR_BATCH_SIZE",
    "PFSR_MSSSIM_WEIGHTS",
    "PfsrProtocol",
    "gaussian_window_1d",
    "pfsr_msssim",
    "pfsr_msssim_levels",
    "pfsr_ssim",
]

PFSR_BATCH_SIZE = 16
"""Batch size of the authors' evaluation loop."""
PFSR_MSSSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Per-level MS-SSIM weights (Wang et al. 2003), finest level first."""


def _guess_data_range(pred: torch.Tensor) -> float:
    """The authors' rule: ``L = max_val - min_val`` guessed from the prediction alone."""
    max_val = 255.0 if float(pred.max()) > 128 else 1.0
    min_val = -1.0 if float(pred.min()) < -0.5 else 0.0
    return max_val - min_val


def _check_pair(pred: torch.Tensor, target: torch.Tensor, what: str, min_size: int = 1) -> None:
    check_image_pair(pred, target, channels=None, min_size=min_size, what=what)


def _ssim_terms(
    pred: torch.Tensor,
    target: torch.Tensor,
    window_size: int,
    val_range: float | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM map and cs map ``[B, C, H', W']`` of the authors' ``ssim()``, float64."""
    x = pred.to(torch.float64)
    y = target.to(torch.float64)
    height, width = x.shape[-2:]
    window = gaussian_window_1d(min(window_size, height, width))
    data_range = _guess_data_range(x) if val_range is None else float(val_range)
    return ssim_maps(x, y, window, c1=(0.01 * data_range) ** 2, c2=(0.03 * data_range) ** 2)


def pfsr_ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    window_size: int = 11,
    size_average: bool = True,
    full: bool = False,
    val_range: float | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The authors' SSIM, in float64.

    Gaussian window (sigma 1.5) of side ``min(window_size, H, W)``, valid convolution (no
    padding) on each channel separately, ``C1 = (0.01 L)**2`` and ``C2 = (0.03 L)**2``. Unless
    ``val_range`` is given, ``L`` is guessed from ``pred`` only: ``max_val = 255`` if
    ``pred.max() > 128`` else 1, ``min_val = -1`` if ``pred.min() < -0.5`` else 0,
    ``L = max_val - min_val``. With an odd window and ``L = 1`` this equals
    ``piq.ssim(kernel_size=11, kernel_sigma=1.5, data_range=1, downsample=False)``.

    Args:
        pred: Predicted images ``[B, C, H, W]``, nominally in ``[0, 1]``; not clamped.
        target: Target images ``[B, C, H, W]``.
        window_size: Largest window side.
        size_average: ``True``: one scalar, the mean of the SSIM map over batch, channels and
            positions (= the mean of per-image SSIMs). ``False``: one value per image ``[B]``.
        full: Also return the contrast-structure term ``cs`` (mean of the cs map).
        val_range: Dynamic range ``L``; ``None`` applies the guessing rule above.

    Returns:
        float64 ``ssim`` (scalar tensor, or ``[B]`` if ``size_average`` is False), or the pair
        ``(ssim, cs)`` when ``full``. Deviation: with ``size_average=False`` the authors' code
        still returns a batch-mean ``cs``; here ``cs`` is per image like ``ssim``. The ``pfsr``
        protocol only uses ``size_average=True``, where both agree.
    """
    _check_pair(pred, target, "pfsr_ssim")
    if window_size < 1:
        raise ValueError(f"pfsr_ssim: window_size must be at least 1, got {window_size}")
    ssim_map, cs_map = _ssim_terms(pred, target, window_size, val_range)
    if size_average:
        ssim_val, cs_val = ssim_map.mean(), cs_map.mean()
    else:
        ssim_val, cs_val = ssim_map.mean(dim=(1, 2, 3)), cs_map.mean(dim=(1, 2, 3))
    if full:
        return ssim_val, cs_val
    return ssim_val


def pfsr_msssim_levels(
    pred: torch.Tensor,
    target: torch.Tensor,
    window_size: int = 11,
    val_range: float | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per-level batch-averaged SSIM and cs of the authors' MS-SSIM.

    Level ``i`` (``i = 0..4``) works on the images average-pooled ``i`` times by 2x2, with the
    window ``min(window_size, size)``: 11, 11, 11, 11, 8 at 128 px. ``L`` is guessed again at each
    level from the pooled prediction (pooling can lift a minimum above -0.5), as in the authors'
    code when no ``val_range`` is passed.

    Args:
        pred: Predicted images ``[B, C, H, W]`` with ``H, W >= 16``, nominally in ``[0, 1]``.
        target: Target images ``[B, C, H, W]``.
        window_size: Largest window side.
        val_range: Dynamic range ``L``; ``None`` guesses it at each level.

    Returns:
        ``(ssims, css)``: two lists of 5 float64 scalar tensors, finest level first.
    """
    levels = len(PFSR_MSSSIM_WEIGHTS)
    _check_pair(pred, target, "pfsr_msssim", min_size=2 ** (levels - 1))
    x = pred.to(torch.float64)
    y = target.to(torch.float64)
    ssims: list[torch.Tensor] = []
    css: list[torch.Tensor] = []
    for level in range(levels):
        if level > 0:
            x = F.avg_pool2d(x, (2, 2))
            y = F.avg_pool2d(y, (2, 2))
        ssim_map, cs_map = _ssim_terms(x, y, window_size, val_range)
        ssims.append(ssim_map.mean())
        css.append(cs_map.mean())
    return ssims, css


def pfsr_msssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    window_size: int = 11,
    val_range: float | None = None,
    fixed_exponent: bool = False,
) -> torch.Tensor:
    """The authors' MS-SSIM of a batch, in float64 (see :func:`pfsr_msssim_levels`).

    With per-level batch means ``s_i`` (SSIM) and ``c_i`` (cs) and weights ``w_i``:

    * ``fixed_exponent=False`` (the authors' code, default):
      ``prod_{i<4} (c_i**w_i * s_4**w_4) = prod_{i<4} c_i**w_i * s_4**(4 * w_4)``;
    * ``fixed_exponent=True`` (Wang et al.): ``prod_{i<4} c_i**w_i * s_4**w_4``.

    The two differ by the factor ``s_4**(3 * w_4)``. As in the authors' code there is no guard
    against a negative ``c_i`` (a fractional power of it is NaN).

    Args:
        pred: Predicted images ``[B, C, H, W]`` with ``H, W >= 16``, nominally in ``[0, 1]``; not
            clamped.
        target: Target images ``[B, C, H, W]``.
        window_size: Largest window side.
        val_range: Dynamic range ``L``; ``None`` guesses it at each level.
        fixed_exponent: Use the standard combination instead of the authors' one.

    Returns:
        float64 scalar tensor (1 for identical images).
    """
    ssims, css = pfsr_msssim_levels(pred, target, window_size=window_size, val_range=val_range)
    weights = torch.tensor(PFSR_MSSSIM_WEIGHTS, dtype=torch.float64, device=ssims[0].device)
    mssim = torch.stack(ssims)
    mcs = torch.stack(css)
    pow_cs = mcs**weights
    pow_ssim = mssim**weights
    if fixed_exponent:
        return torch.prod(pow_cs[:-1]) * pow_ssim[-1]
    return torch.prod(pow_cs[:-1] * pow_ssim[-1])


def _batch_psnr(sr: torch.Tensor, hr: torch.Tensor) -> float:
    """``10 * log10(1 / MSE)`` with the MSE over the whole batch; ``inf`` when MSE is 0."""
    mse = float((sr - hr).pow(2).mean())
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


class PfsrProtocol:
    """Accumulator for the authors' evaluation (the ``pfsr`` protocol).

    ``update`` can be called with batches of any size: the stream of images is regrouped into
    consecutive batches of exactly ``batch_size`` images (only the last one may be smaller), so
    results do not depend on how the caller batches. For each batch it computes, in float64 and
    without clamping: PSNR ``10 * log10(1 / MSE)`` over all values of the batch,
    :func:`pfsr_ssim` and :func:`pfsr_msssim`. :meth:`compute` returns the unweighted means over
    batches. On CelebA's test split (19,962 images) that is 1,248 batches, the last of 10.

    A batch whose images equal their targets has PSNR ``inf``, and then so does the mean: this
    is the authors' arithmetic and is not capped here.

    Example:
        >>> proto = PfsrProtocol()
        >>> for sr, hr in loader:  # [B, 3, 128, 128] in [0, 1]
        ...     proto.update(sr, hr)
        >>> proto.compute()["psnr"]
    """

    name = "pfsr"

    def __init__(self, batch_size: int = PFSR_BATCH_SIZE) -> None:
        """Create an empty accumulator.

        Args:
            batch_size: Images per evaluation batch (16 in the authors' code).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.batch_size = batch_size
        self.reset()

    def reset(self) -> None:
        """Forget every image seen so far."""
        self._pending_sr: list[torch.Tensor] = []
        self._pending_hr: list[torch.Tensor] = []
        self._pending_count = 0
        self._shape: tuple[int, ...] | None = None
        self._batch_psnr: list[float] = []
        self._batch_ssim: list[float] = []
        self._batch_msssim: list[float] = []
        self._image_psnr: list[float] = []

    @property
    def images(self) -> int:
        """Number of images passed to :meth:`update` so far."""
        return len(self._image_psnr)

    def update(self, sr: torch.Tensor, hr: torch.Tensor) -> None:
        """Add a batch of images.

        Args:
            sr: Super-resolved images ``[B, 3, H, W]`` in ``[0, 1]`` (not clamped); ``H, W >= 16``.
            hr: Targets ``[B, 3, H, W]`` in ``[0, 1]``.

        Raises:
            ValueError: On bad shapes, dtypes or non-finite values, a target outside ``[0, 1]``,
                or an image size different from earlier updates.
        """
        check_image_pair(sr, hr, channels=3, min_size=16, what="PfsrProtocol.update")
        check_target_range(hr, 1.0, what="PfsrProtocol.update")
        shape = tuple(sr.shape[1:])
        if self._shape is None:
            self._shape = shape
        elif shape != self._shape:
            raise ValueError(
                f"PfsrProtocol.update: images must keep one size, got {list(shape)} after "
                f"{list(self._shape)}"
            )
        sr = sr.detach().to(torch.float64)
        hr = hr.detach().to(torch.float64)
        for mse in (sr - hr).pow(2).mean(dim=(1, 2, 3)).tolist():
            self._image_psnr.append(math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse))
        device = self._pending_sr[0].device if self._pending_sr else sr.device
        self._pending_sr.append(sr.to(device))
        self._pending_hr.append(hr.to(device))
        self._pending_count += sr.shape[0]
        if self._pending_count >= self.batch_size:
            all_sr = torch.cat(self._pending_sr)
            all_hr = torch.cat(self._pending_hr)
            n_full = self._pending_count // self.batch_size * self.batch_size
            for start in range(0, n_full, self.batch_size):
                stop = start + self.batch_size
                self._add_batch(all_sr[start:stop], all_hr[start:stop])
            rest_sr, rest_hr = all_sr[n_full:], all_hr[n_full:]
            self._pending_sr = [rest_sr] if rest_sr.shape[0] else []
            self._pending_hr = [rest_hr] if rest_hr.shape[0] else []
            self._pending_count = rest_sr.shape[0]

    @staticmethod
    def _batch_metrics(sr: torch.Tensor, hr: torch.Tensor) -> tuple[float, float, float]:
        return (
            _batch_psnr(sr, hr),
            float(pfsr_ssim(sr, hr)),
            float(pfsr_msssim(sr, hr)),
        )

    def _add_batch(self, sr: torch.Tensor, hr: torch.Tensor) -> None:
        p, s, m = self._batch_metrics(sr, hr)
        self._batch_psnr.append(p)
        self._batch_ssim.append(s)
        self._batch_msssim.append(m)

    def compute(self) -> dict[str, float | int | str]:
        """Means over batches, the last partial batch included.

        The partial batch is evaluated but kept pending, so more :meth:`update` calls can follow
        and regrouping stays exact.

        Returns:
            ``{"protocol": "pfsr", "images": n, "batches": k, "batch_size": 16, "psnr": dB,
            "ssim": ..., "ms_ssim": ...}``; each batch counts equally.

        Raises:
            ValueError: If no image has been added.
        """
        if self.images == 0:
            raise ValueError("PfsrProtocol.compute: no images; call update() first")
        psnrs = list(self._batch_psnr)
        ssims = list(self._batch_ssim)
        msssims = list(self._batch_msssim)
        if self._pending_count:
            p, s, m = self._batch_metrics(torch.cat(self._pending_sr), torch.cat(self._pending_hr))
            psnrs.append(p)
            ssims.append(s)
            msssims.append(m)
        k = len(psnrs)
        return {
            "protocol": self.name,
            "images": self.images,
            "batches": k,
            "batch_size": self.batch_size,
            "psnr": sum(psnrs) / k,
            "ssim": sum(ssims) / k,
            "ms_ssim": sum(msssims) / k,
        }

    def per_image(self) -> list[dict[str, float | int]]:
        """Per-image PSNR, in update order, with the evaluation batch each image falls in.

        The ``pfsr`` protocol defines SSIM and MS-SSIM only per batch, so only PSNR
        (``10 * log10(1 / MSE)`` of the image, float64, no clamp; ``inf`` for an exact match) is
        given per image.

        Returns:
            ``[{"index": i, "batch": b, "psnr": dB}, ...]``, one dict per image.
        """
        return [
            {"index": i, "batch": i // self.batch_size, "psnr": p}
            for i, p in enumerate(self._image_psnr)
        ]
