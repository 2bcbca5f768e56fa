"""Evaluation protocols: accumulate SR/HR batches, then report mean metrics.

Two protocols share one interface (:class:`EvalProtocol`): ``update(sr, hr)`` with image batches
``[B, 3, H, W]`` in ``[0, 1]``, ``compute() -> dict``, ``per_image() -> list[dict]`` and
``reset()``.

* ``standard`` (:class:`StandardProtocol`, the default): per-image RGB PSNR, SSIM and MS-SSIM
  (:mod:`progface.metrics.quality`: clamped to ``[0, 1]``, float64; SSIM and MS-SSIM are
  progface's own, matching piq's ``ssim``/``multi_scale_ssim`` (tested)) averaged over images.
  Independent of batching.
* ``pfsr`` (:class:`~progface.metrics.pfsr_protocol.PfsrProtocol`): the authors' ``eval.py``,
  for figures comparable with the paper's tables.

Use :func:`make_protocol` to build one by name.
"""

from __future__ import annotations

import math
from typing import Any, Protocol, runtime_checkable

import torch

from progface.metrics._validation import check_image_pair
from progface.metrics.pfsr_protocol import PfsrProtocol
from progface.metrics.quality import ms_ssim, ms_ssim_kernel_for, psnr, ssim

__all__ = [
    "PROTOCOLS",
    "PSNR_CAP_DB",
    "EvalProtocol",
    "StandardProtocol",
    "make_protocol",
]

PSNR_CAP_DB = 100.0
"""Cap applied to each image's PSNR before the ``standard`` average.

An SR image identical to its target has PSNR ``+inf``; averaging it would make the mean
``inf``. For the mean only, such values (and any above the cap) count as 100 dB, and
``compute()`` reports how many images were capped. ``per_image()`` keeps the raw values. 100 dB
is far above any real result (one 8-bit step everywhere is 48.13 dB)."""


@runtime_checkable
class EvalProtocol(Protocol):
    """What ``bench`` needs from an evaluation protocol."""

    name: str

    def update(self, sr: torch.Tensor, hr: torch.Tensor) -> None:
        """Add SR images and their targets, ``[B, 3, H, W]`` in ``[0, 1]``."""
        ...

    def compute(self) -> dict[str, Any]:
        """Mean metrics so far, with ``"protocol"`` (the name) and ``"images"`` keys."""
        ...

    def per_image(self) -> list[dict[str, Any]]:
        """One dict of metrics per image, in update order, each with an ``"index"`` key."""
        ...

    def reset(self) -> None:
        """Forget every image seen so far."""
        ...


class StandardProtocol:
    """The ``standard`` protocol: per-image PSNR, SSIM and MS-SSIM averaged over images.

    Metrics come from :mod:`progface.metrics.quality` (RGB, clamped to ``[0, 1]``, float64;
    SSIM with an 11x11 sigma-1.5 window; MS-SSIM with the largest window that fits, 7 at
    128 px). The MS-SSIM window is fixed by the first update (or by ``ms_ssim_kernel``) and kept
    for the whole run, so all images are scored alike; ``compute()`` reports it. Per-image PSNR
    is capped at :data:`PSNR_CAP_DB` for the mean only.
    """

    name = "standard"

    def __init__(self, ms_ssim_kernel: int | None = None, psnr_cap: float = PSNR_CAP_DB) -> None:
        """Create an empty accumulator.

        Args:
            ms_ssim_kernel: Odd MS-SSIM window; ``None`` picks
                ``ms_ssim_kernel_for(min(H, W))`` at the first update.
            psnr_cap: Per-image PSNR cap (dB) used when averaging.
        """
        if ms_ssim_kernel is not None and (
            isinstance(ms_ssim_kernel, bool)
            or not isinstance(ms_ssim_kernel, int)
            or ms_ssim_kernel < 1
            or ms_ssim_kernel % 2 == 0
        ):
            raise ValueError(f"ms_ssim_kernel must be a positive odd int, got {ms_ssim_kernel!r}")
        if not (isinstance(psnr_cap, int | float) and math.isfinite(psnr_cap) and psnr_cap > 0):
            raise ValueError(f"psnr_cap must be a positive finite number, got {psnr_cap!r}")
        self._requested_kernel = ms_ssim_kernel
        self.psnr_cap = float(psnr_cap)
        self.reset()

    def reset(self) -> None:
        """Forget every image seen so far (and the window chosen at the first update)."""
        self.ms_ssim_kernel: int | None = self._requested_kernel
        self._psnr: list[float] = []
        self._ssim: list[float] = []
        self._ms_ssim: list[float] = []

    @property
    def images(self) -> int:
        """Number of images passed to :meth:`update` so far."""
        return len(self._psnr)

    def update(self, sr: torch.Tensor, hr: torch.Tensor) -> None:
        """Score a batch of images and store the per-image values.

        Args:
            sr: Super-resolved images ``[B, 3, H, W]`` in ``[0, 1]`` (clamped).
            hr: Targets ``[B, 3, H, W]`` in ``[0, 1]``.

        Raises:
            ValueError: On bad inputs (see :func:`progface.metrics.quality.psnr`) or images too
                small for the MS-SSIM window (at least 33 px; 97 px for window 7).
        """
        check_image_pair(sr, hr, channels=3, what="StandardProtocol.update")
        if self.ms_ssim_kernel is None:
            self.ms_ssim_kernel = ms_ssim_kernel_for(min(sr.shape[-2:]))
        p = psnr(sr, hr)
        s = ssim(sr, hr)
        m = ms_ssim(sr, hr, kernel_size=self.ms_ssim_kernel)
        self._psnr.extend(p.tolist())
        self._ssim.extend(s.tolist())
        self._ms_ssim.extend(m.tolist())

    def compute(self) -> dict[str, Any]:
        """Means over images.

        Returns:
            ``{"protocol": "standard", "images": n, "psnr": dB, "ssim": ..., "ms_ssim": ...,
            "ms_ssim_kernel": k, "psnr_cap": 100.0, "psnr_capped": c}`` where ``c`` counts the
            images whose PSNR was above the cap (identical to their target).

        Raises:
            ValueError: If no image has been added.
        """
        n = self.images
        if n == 0:
            raise ValueError("StandardProtocol.compute: no images; call update() first")
        capped = [min(v, self.psnr_cap) for v in self._psnr]
        return {
            "protocol": self.name,
            "images": n,
            "psnr": sum(capped) / n,
            "ssim": sum(self._ssim) / n,
            "ms_ssim": sum(self._ms_ssim) / n,
            "ms_ssim_kernel": self.ms_ssim_kernel,
            "psnr_cap": self.psnr_cap,
            "psnr_capped": sum(v > self.psnr_cap for v in self._psnr),
        }

    def per_image(self) -> list[dict[str, Any]]:
        """Per-image values in update order (raw PSNR: ``inf`` for an exact match).

        Returns:
            ``[{"index": i, "psnr": dB, "ssim": ..., "ms_ssim": ...}, ...]``.
        """
        return [
            {"index": i, "psnr": p, "ssim": s, "ms_ssim": m}
            for i, (p, s, m) in enumerate(zip(self._psnr, self._ssim, self._ms_ssim, strict=True))
        ]


PROTOCOLS: dict[str, type] = {"standard": StandardProtocol, "pfsr": PfsrProtocol}
"""Protocol classes by name."""


def make_protocol(name: str, **kwargs: Any) -> EvalProtocol:
    """Build an evaluation protocol by name.

    Args:
        name: ``"standard"`` or ``"pfsr"``.
        **kwargs: Passed to the class (``ms_ssim_kernel``/``psnr_cap`` for ``standard``,
            ``batch_size`` for ``pfsr``).

    Returns:
        A fresh, empty protocol.

    Raises:
        ValueError: For an unknown name; the message lists the valid ones.
    """
    try:
        cls = PROTOCOLS[name]
    except (KeyError, TypeError):
        valid = ", ".join(repr(k) for k in PROTOCOLS)
        raise ValueError(f"unknown evaluation protocol {name!r}; valid names: {valid}") from None
    return cls(**kwargs)
