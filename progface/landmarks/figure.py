"""The heatmap figure: rows of face | channel-max heatmap | landmarks."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import Tensor

__all__ = ["heatmap_figure", "heatmap_tile", "landmark_tile"]


def heatmap_tile(heatmaps: Tensor, size: int) -> Tensor:
    """``[N, h, w]`` heatmaps -> ``[3, size, size]`` image of their channel maximum, min-max
    normalised (the paper's attention map), shown with a black-red-yellow-white ramp."""
    m = heatmaps.float().amax(dim=0)
    m = (m - m.min()) / (m.max() - m.min()).clamp(min=1e-8)
    m = F.interpolate(m[None, None], size=(size, size), mode="bilinear")[0, 0].clamp(0, 1)
    return torch.stack(((3 * m).clamp(0, 1), (3 * m - 1).clamp(0, 1), (3 * m - 2).clamp(0, 1)))


def landmark_tile(
    image: Tensor, pred: Tensor, labels: Tensor | None = None, size: int = 192
) -> Tensor:
    """Face ``[3, H, W]`` enlarged to ``size`` with predicted points (red) and, when given,
    labelled points (green); points are in the face's pixel frame."""
    h = image.shape[-1]
    big = F.interpolate(image[None].float(), size=(size, size), mode="bilinear")[0]
    arr = (big.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    pil = Image.fromarray(np.ascontiguousarray(arr), "RGB")
    draw = ImageDraw.Draw(pil)
    scale = size / h
    r = max(1.0, size / 128)
    for points, colour in ((labels, (40, 220, 40)), (pred, (255, 40, 40))):
        if points is None:
            continue
        for x, y in ((points.float().cpu() + 0.5) * scale).tolist():
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    out = torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1).float() / 255
    return out


def heatmap_figure(
    images: Tensor,
    heatmaps: Tensor,
    pred: Tensor,
    labels: Tensor | None = None,
    size: int = 192,
    titles: tuple[str, str, str] = ("face", "channel max", "red: found, green: label"),
) -> Image.Image:
    """Rows of face | channel-max heatmap | landmarks for faces ``[B, 3, H, W]``, heatmaps
    ``[B, N, h, w]`` and landmarks ``[B, N, 2]`` (face frame)."""
    from progface.io.figures import grid

    rows = []
    for i in range(images.shape[0]):
        face = F.interpolate(images[i : i + 1].float(), size=(size, size), mode="bilinear")[0]
        lab = labels[i] if labels is not None else None
        rows.append(
            (face, heatmap_tile(heatmaps[i], size), landmark_tile(images[i], pred[i], lab, size))
        )
    return grid(rows, titles, size=size)
