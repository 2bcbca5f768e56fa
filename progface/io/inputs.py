"""Turning user files into model inputs: scan a folder, load one face, make its LR version."""

from __future__ import annotations

from pathlib import Path

import torch

from progface.data.degrade import degrade_chain, prepare_hr
from progface.data.errors import ImageError
from progface.io.images import IMAGE_SUFFIXES, list_images, load_image

LR_SIZE = 16


def scan_folder(folder: str | Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Image files of ``folder`` and the other entries (files, folders, dangling links) with
    why they are skipped; hidden entries are left out.

    Raises ``FolderError`` for a missing folder, a file, or a folder without images.
    """
    images = list_images(folder)
    return images, [(p, why) for p in sorted(Path(folder).iterdir()) if (why := _not_used(p))]


def _not_used(path: Path) -> str | None:
    """Why a folder entry is not an input (None: it is an image file, or hidden)."""
    if path.name.startswith("."):
        return None
    if path.is_symlink() and not path.exists():
        return "dangling symbolic link (its target does not exist)"
    if path.is_dir():
        return "a folder (folders are not searched)"
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return f"not an image file (suffix {path.suffix or 'none'!r})"
    return None


def load_face(path: Path, crop: str, need_hr: bool = False) -> dict[str, torch.Tensor | None]:
    """``{"hr": [3,128,128] or None, "lr": [3,16,16]}`` in [0, 1] for one face file.

    A 16x16 file is taken as the LR input itself (no HR). Anything else is cropped, brought to
    128 px and degraded by the paper's chain (uint8 rounding per stage, as PIL does).
    """
    return face_of_image(load_image(path), path, crop, need_hr)


def face_of_image(
    img: torch.Tensor, path: Path, crop: str, need_hr: bool = False
) -> dict[str, torch.Tensor | None]:
    """:func:`load_face` on an image already decoded from ``path`` (``[3, H, W]`` in [0, 1]):
    callers that looked at the image first do not decode it twice."""
    h, w = img.shape[-2:]
    if min(h, w) < LR_SIZE:
        raise ImageError(path, f"too small ({w}x{h}): faces need at least 16x16 pixels")
    if (h, w) == (LR_SIZE, LR_SIZE):
        if need_hr:
            raise ImageError(path, "already 16x16: benchmarks need high-resolution faces")
        return {"hr": None, "lr": img}
    hr = prepare_hr(img, crop, size=128, quantize=True, path=path)
    return {"hr": hr, "lr": degrade_chain(hr[None], quantize=True)[-1][0]}
