"""Landmark prediction and NME evaluation for any heatmap source.

``predict_landmarks`` runs a source on faces resized to a working resolution (64 or 128 px in
the paper's Table 1) and returns landmarks in the pixel frame of the faces given, so errors at
every resolution are measured in the same frame. ``nme_of_sr`` measures how well an SR
method's outputs keep the face's landmarks (the landmark error of SR output).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from progface.landmarks.heatmaps import decode_heatmaps, rescale_points
from progface.metrics.nme import nme

__all__ = ["landmark_errors", "nme_of_sr", "predict_landmarks", "resize_faces"]


def resize_faces(images: Tensor, size: int, quantize: bool = True) -> Tensor:
    """Antialiased bilinear resize to ``size`` px (the first stage of the paper's chain), rounded
    to 1/255 like a stored image when ``quantize``. Identity at the same size."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True)
    return torch.round(out.clamp(0, 1) * 255) / 255 if quantize else out


@torch.no_grad()
def predict_landmarks(
    source: Callable[[Tensor], Tensor], images: Tensor, size: int | None = None
) -> Tensor:
    """Landmarks ``[B, N, 2]`` of faces ``[B, 3, H, W]`` in [0, 1], in the frame of ``images``.

    The faces are resized to ``size`` px first (None: as given); the source's heatmaps are
    decoded (argmax + quarter-pixel shift) and their coordinates mapped back to ``H x W``.
    """
    h, w = images.shape[-2:]
    work = images if size is None else resize_faces(images, size)
    heatmaps = source(work)
    points = decode_heatmaps(heatmaps.float())
    return rescale_points(points, tuple(heatmaps.shape[-2:]), (h, w))


@torch.no_grad()
def landmark_errors(
    source: Callable[[Tensor], Tensor],
    images: Tensor,
    points: Tensor,
    sizes: Sequence[int] = (64, 128),
    batch_size: int = 32,
) -> dict[int, dict[str, Tensor]]:
    """Per-image NME of ``source`` against labelled ``points`` at each working size.

    Args:
        images: ``[M, 3, S, S]`` faces in [0, 1] (the labels' frame).
        points: ``[M, 68, 2]`` labelled landmarks in that frame.
        sizes: working resolutions; the faces are resized to each before the source runs.

    Returns:
        ``{size: {"size": [M], "inter_ocular": [M], "pred": [M, 68, 2]}}``; NME as fractions,
        normalised by the image side and by the labels' outer-eye-corner distance.
    """
    side = images.shape[-1]
    out: dict[int, dict[str, Tensor]] = {}
    for size in sizes:
        preds = [
            predict_landmarks(source, images[i : i + batch_size], size).cpu()
            for i in range(0, len(images), batch_size)
        ]
        pred = torch.cat(preds)
        target = points.float().cpu()
        out[size] = {
            "size": nme(pred, target, "size", side),
            "inter_ocular": nme(pred, target, "inter_ocular"),
            "pred": pred,
        }
    return out


@torch.no_grad()
def nme_of_sr(
    method: Callable[[Tensor], Tensor],
    hr: Tensor,
    points: Tensor | None = None,
    *,
    source: Callable[[Tensor], Tensor] | None = None,
    lr: Tensor | None = None,
    norm: str = "inter_ocular",
) -> Tensor:
    """Landmark error of an SR method's outputs, per image ``[B]`` (a fraction).

    Args:
        method: LR ``[B, 3, 16, 16]`` -> SR ``[B, 3, 128, 128]``, in [0, 1] (a loaded method).
        hr: HR faces ``[B, 3, 128, 128]`` in [0, 1].
        points: labelled HR landmarks ``[B, 68, 2]`` (128-px frame). None: the source's own
            landmarks on ``hr`` are the reference (no labels needed).
        source: heatmap source that finds landmarks on the SR faces (default: the shipped
            ``fan-distilled``).
        lr: the LR inputs (default: the paper's chain 128 -> 64 -> 32 -> 16 of ``hr``).
        norm: ``"inter_ocular"`` or ``"size"`` (divide by 128).
    """
    if source is None:
        from progface.landmarks.sources import FanDistilledSource

        source = FanDistilledSource.load(device=str(hr.device))
    if lr is None:
        lr = resize_faces(resize_faces(resize_faces(hr, 64), 32), 16)
    sr = method(lr).float().clamp(0, 1)
    pred = predict_landmarks(source, sr)
    ref = points.float().to(pred.device) if points is not None else predict_landmarks(source, hr)
    return nme(pred, ref, norm, hr.shape[-1])
