"""progface.metrics: image quality metrics and evaluation protocols.

* :mod:`~progface.metrics.quality`: per-image PSNR, Y-PSNR, SSIM and MS-SSIM (matching
  piq's, tested).
* :mod:`~progface.metrics.ssim_maps`: the Gaussian SSIM maps both protocols build on.
* :mod:`~progface.metrics.pfsr_protocol`: the authors' evaluation (``pfsr`` protocol).
* :mod:`~progface.metrics.protocols`: the ``standard`` protocol and :func:`make_protocol`.
"""

from __future__ import annotations

from progface.metrics.pfsr_protocol import (
    PfsrProtocol,
    pfsr_msssim,
    pfsr_msssim_levels,
    pfsr_ssim,
)
from progface.metrics.protocols import (
    PROTOCOLS,
    PSNR_CAP_DB,
    EvalProtocol,
    StandardProtocol,
    make_protocol,
)
from progface.metrics.quality import ms_ssim, ms_ssim_kernel_for, psnr, ssim, y_psnr

__all__ = [
    "PROTOCOLS",
    "PSNR_CAP_DB",
    "EvalProtocol",
    "PfsrProtocol",
    "StandardProtocol",
    "make_protocol",
    "ms_ssim",
    "ms_ssim_kernel_for",
    "pfsr_msssim",
    "pfsr_msssim_levels",
    "pfsr_ssim",
    "psnr",
    "ssim",
    "y_psnr",
]
