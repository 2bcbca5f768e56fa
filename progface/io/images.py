"""Image files: load as float tensors, save PNGs atomically, list the images of a folder.

Loading rules (``load_image``):

- any PIL mode becomes 3-channel RGB; grayscale is repeated over the channels;
- transparent images (RGBA, LA, PA, or P/L/RGB with a transparency key) are composited onto
  white, so cut-out faces do not get the black background hidden under their alpha;
- 16-bit grayscale PNG/TIFF (PIL modes ``I;16*`` and ``I``) are divided by 65535, keeping their
  full precision (``I`` is read as 16-bit: clipped to [0, 65535]); mode ``F`` is read on PIL's
  0..255 scale. PIL itself reads 16-bit-per-channel colour PNGs as 8-bit RGB;
- the EXIF orientation tag is applied (``ImageOps.exif_transpose``);
- the whole file is decoded at once (``img.load()``), so truncated files fail here and not later
  inside a data loader; PIL's ``LOAD_TRUNCATED_IMAGES`` is left False.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from progface.data.errors import FolderError, ImageError

__all__ = [
    "IMAGE_SUFFIXES",
    "FolderError",
    "ImageError",
    "list_images",
    "load_image",
    "load_image_uint8",
    "save_png",
]

COMMON_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
MAX_PIXELS = 64_000_000  # larger images are refused before decoding (decompression bombs)


def _pil_suffixes() -> tuple[str, ...]:
    """Every suffix PIL can open here (GIF, AVIF, TGA, ...), the common ones first."""
    Image.init()
    readable = {e for e, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    return COMMON_SUFFIXES + tuple(sorted(readable - set(COMMON_SUFFIXES)))


IMAGE_SUFFIXES = _pil_suffixes()

_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _one_line(err: BaseException, path: Path) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    # PIL repeats the file name ("cannot identify image file '/a/b.jpg'"); the error names it.
    return text.replace(f" {str(path)!r}", "").replace(f" {path.name!r}", "")


def _unreadable(err: Exception, path: Path) -> ImageError:
    msg = _one_line(err, path)
    if isinstance(err, Image.DecompressionBombError):
        return ImageError(path, f"image too large: {msg}")
    if isinstance(err, OSError) and "truncated" in msg.lower():
        return ImageError(path, f"truncated image: {msg}")
    return ImageError(path, f"not a readable image: {msg}")


def _open_decoded(path: Path) -> Image.Image:
    """Open and fully decode ``path``; every failure becomes an ``ImageError``."""
    if not path.exists():
        raise ImageError(path, "no such file")
    if path.is_dir():
        raise ImageError(path, "is a folder, not an image file")
    if path.stat().st_size == 0:
        raise ImageError(path, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():  # PIL's bomb warning: _check_size refuses instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            _check_size(img, path)
            img.load()  # decode everything now: truncated data fails here
            try:
                oriented = ImageOps.exif_transpose(img)
            except Exception:  # a broken EXIF block should not make the pixels unusable
                oriented = img
            return oriented.copy() if oriented is img else oriented
    except ImageError:
        raise
    except Exception as err:  # UnidentifiedImageError, OSError, SyntaxError from plugins ...
        raise _unreadable(err, path) from err


def _check_size(img: Image.Image, path: Path) -> None:
    """Refuse images over MAX_PIXELS from their header, before any memory is spent on them."""
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageError(
            path,
            f"image too large ({w}x{h} = {w * h / 1e6:.0f} Mpx; at most {MAX_PIXELS / 1e6:.0f} "
            "Mpx are decoded, a guard against decompression bombs)",
        )


def _to_rgb_array(img: Image.Image, path: Path) -> np.ndarray:
    """PIL image -> HxWx3 array, uint8 (most modes) or uint16 (16-bit grayscale)."""
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES:
        arr = np.clip(np.asarray(img).astype(np.int64), 0, 65535).astype(np.uint16)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if mode == "F":
        arr = np.clip(np.rint(np.asarray(img, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    try:
        if mode in _ALPHA_MODES or "transparency" in img.info:
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(white, rgba)
        rgb = img.convert("RGB")
    except (ValueError, OSError) as err:
        raise ImageError(path, f"unsupported image mode {mode}: {_one_line(err, path)}") from err
    return np.asarray(rgb, dtype=np.uint8)


def load_image(path: str | Path) -> torch.Tensor:
    """Read an image file as a float32 tensor [3, H, W] with values in [0, 1].

    Raises ``ImageError`` (``"<path>: <reason>"``) for missing, empty, unreadable or truncated
    files.
    """
    path = Path(path)
    arr = _to_rgb_array(_open_decoded(path), path)
    scale = 65535.0 if arr.dtype == np.uint16 else 255.0
    # channels first while still 8/16-bit, then one float copy divided in place (peak memory)
    arr = arr.astype(np.int32) if arr.dtype == np.uint16 else np.require(arr, requirements="W")
    chw = torch.from_numpy(arr)
    return chw.permute(2, 0, 1).contiguous().to(torch.float32).div_(scale)


def load_image_uint8(path: str | Path) -> np.ndarray:
    """Read an image file as a uint8 array [H, W, 3] (16-bit data rounded to 8 bits)."""
    path = Path(path)
    arr = _to_rgb_array(_open_decoded(path), path)
    if arr.dtype == np.uint16:
        arr = ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.ascontiguousarray(arr)


def save_png(image: torch.Tensor, path: str | Path) -> Path:
    """Write ``image`` [3, H, W] (values in [0, 1], clamped, rounded to uint8) as a PNG.

    The file is written atomically (:func:`progface.io.atomic.write_atomic`), so a crash never
    leaves a half-written PNG; parent folders are created.
    Returns the path written.
    """
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"save_png expects a tensor [3, H, W], got {shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = image.detach().to("cpu", torch.float32).clamp(0, 1).mul(255).round().to(torch.uint8)
    array = pixels.permute(1, 2, 0).contiguous().numpy()
    from progface.io.atomic import write_atomic

    return write_atomic(path, lambda tmp: Image.fromarray(array).save(tmp, format="PNG"))


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder`` (not recursive), sorted by name.

    A file counts as an image by its suffix (``IMAGE_SUFFIXES``: every format PIL reads, any
    case); hidden files
    (name starting with ``.``, e.g. macOS ``._x.jpg``) are ignored. Raises ``FolderError`` when
    the folder is missing, is a file, or holds no image files.
    """
    folder = Path(folder)
    if not folder.exists():
        raise FolderError(folder, "no such folder")
    if not folder.is_dir():
        raise FolderError(folder, "is a file, not a folder")
    files = sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )
    if not files:
        raise FolderError(
            folder,
            f"no images ({', '.join(COMMON_SUFFIXES)} or another format PIL reads) in folder",
        )
    return files
