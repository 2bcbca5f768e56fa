"""A small, fast PNG writer for 8-bit RGB images (what ``upscale`` writes by the thousand).

PIL tries several row filters and writes through its generic encoder: on a 128x128 face that
costs 1.2 ms at zlib level 1. One fixed filter ("Up": each row minus the row above, which suits
smooth faces) computed by numpy, one zlib call and the three chunks the format needs (PNG
specification, RFC 2083) take 0.65 ms for about 3 % more bytes. Lossless like any PNG.

The deflate stream comes from ISA-L (the ``isal`` package, a dependency where it has wheels) at
levels 1-3: the same format as zlib's, 5x faster at level 1 on 128-px faces and compare panels
(0.13 against 0.70 ms, 0.24 against 1.15 ms) for the same size within 3 %. Without it, and at
levels 0 and 4-9, the standard library's zlib.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

try:
    from isal import isal_zlib
except ImportError:  # no wheel for this platform: the standard library's zlib
    isal_zlib = None

__all__ = ["encode_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FILTER_UP = 2


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def encode_png(rgb: np.ndarray, level: int = 1) -> bytes:
    """The bytes of a PNG file holding ``rgb``.

    Args:
        rgb: uint8 array ``[H, W, 3]`` (H, W >= 1).
        level: compression level 0-9, as zlib's (0: stored; 1: fastest that compresses; every
            level is lossless); 1-3 go through ISA-L when it is installed.

    Returns:
        An 8-bit truecolour, non-interlaced PNG (every row with the "Up" filter).
    """
    if (
        not isinstance(rgb, np.ndarray)
        or rgb.dtype != np.uint8
        or rgb.ndim != 3
        or rgb.shape[2] != 3
    ):
        raise ValueError(
            f"encode_png needs a uint8 [H, W, 3] array, got {getattr(rgb, 'shape', type(rgb))}"
        )
    height, width = rgb.shape[:2]
    if height < 1 or width < 1:
        raise ValueError(f"encode_png needs a non-empty image, got {height}x{width}")
    rows = np.ascontiguousarray(rgb).reshape(height, width * 3)
    filtered = np.empty((height, width * 3 + 1), dtype=np.uint8)
    filtered[:, 0] = _FILTER_UP
    filtered[0, 1:] = rows[0]  # the row above the first is zeros
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # modulo 256, as the format wants
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bit, RGB, no interlace
    return (_SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", _deflate(filtered.tobytes(), level)) + _chunk(b"IEND", b""))  # fmt: skip


def _deflate(data: bytes, level: int) -> bytes:
    """A zlib stream of ``data`` (ISA-L's levels 1-3 when installed, zlib's otherwise)."""
    if isal_zlib is not None and 1 <= level <= isal_zlib.ISAL_BEST_COMPRESSION:
        return isal_zlib.compress(data, level)
    return zlib.compress(data, level)
