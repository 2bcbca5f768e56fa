"""Built-in plugin: per-image PSNR, SSIM and MS-SSIM on RGB images in [0, 1].

SSIM and MS-SSIM are progface's own (:mod:`progface.metrics.quality`), matching piq's ``ssim``
and ``multi_scale_ssim`` (tested).
"""

from __future__ import annotations

from progface.hookspecs import hookimpl
from progface.registry import MetricSpec


def psnr(sr, hr):
    from progface.metrics.quality import psnr

    return psnr(sr, hr)


def ssim(sr, hr):
    from progface.metrics.quality import ssim

    return ssim(sr, hr)


def ms_ssim(sr, hr):
    from progface.metrics.quality import ms_ssim

    return ms_ssim(sr, hr)


@hookimpl
def register_metrics(register):
    register(MetricSpec("psnr", psnr, "PSNR on RGB, data range 1", unit="dB"))
    ssim_text = "SSIM (Gaussian 11/1.5, no downsampling; matching piq's ssim, tested)"
    register(MetricSpec("ssim", ssim, ssim_text))
    register(
        MetricSpec(
            "ms-ssim",
            ms_ssim,
            "MS-SSIM (the largest kernel that fits, 7 at 128 px; matching piq's "
            "multi_scale_ssim, tested)",
            aliases=("ms_ssim", "msssim"),
        )
    )
