"""Built-in plugin: per-image PSNR, SSIM and MS-SSIM (piq) on RGB images in [0, 1]."""

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
    register(MetricSpec("ssim", ssim, "SSIM (piq, Gaussian 11/1.5, no downsampling)"))
    register(
        MetricSpec(
            "ms-ssim",
            ms_ssim,
            "MS-SSIM (piq; the largest kernel that fits, 7 at 128 px)",
            aliases=("ms_ssim", "msssim"),
        )
    )
