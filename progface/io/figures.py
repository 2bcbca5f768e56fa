"""Image panels: the upscale compare strip and the bench comparison figure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

LABEL_HEIGHT = 14


def to_pil(img: torch.Tensor, size: int | None = None) -> Image.Image:
    """``[3,H,W]`` in [0, 1] -> PIL RGB; small images are enlarged with nearest neighbour."""
    if size is not None and img.shape[-1] != size:
        img = F.interpolate(img[None].float(), size=(size, size), mode="nearest")[0]
    arr = (img.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, "RGB")


def grid(
    rows: Sequence[Sequence[torch.Tensor]], labels: Sequence[str], size: int = 128, gap: int = 2
) -> Image.Image:
    """Rows of equally sized tiles with one label per column on top."""
    cols = len(labels)
    width = cols * size + (cols - 1) * gap
    height = LABEL_HEIGHT + len(rows) * size + (len(rows) - 1) * gap
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for c, label in enumerate(labels):
        draw.text((c * (size + gap) + 3, 1), label, fill="black")
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            canvas.paste(to_pil(tile, size), (c * (size + gap), LABEL_HEIGHT + r * (size + gap)))
    return canvas


def save_atomic(image: Image.Image, path: Path, overwrite: bool = True) -> Path:
    """Write a PNG atomically (:func:`progface.io.atomic.write_atomic`); without ``overwrite`` an
    existing file raises ``FileExistsError`` and is left as it is. zlib level 1: lossless like
    any level, 2.2x faster to write than PIL's default 6 for 1.6 % more bytes on a face (the
    writing kept ``upscale`` well below the network's pace)."""
    from progface.io.atomic import write_atomic

    def write(tmp: Path) -> None:
        image.save(tmp, format="PNG", compress_level=PNG_COMPRESS_LEVEL)

    return write_atomic(path, write, overwrite=overwrite)


PNG_COMPRESS_LEVEL = 1
