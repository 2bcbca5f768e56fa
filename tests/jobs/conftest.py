from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


def smooth_face(seed: int, size: int = 128, mode: str = "RGB") -> Image.Image:
    """A smooth random image (low-frequency noise), so that resizing behaves as on photos."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8))
    return small.resize((size, size), Image.BICUBIC).convert(mode)


@pytest.fixture
def face_folder(tmp_path):
    """4 readable faces (jpg, png, grayscale png, 16-bit png) and 4 files that must be skipped."""
    src = tmp_path / "faces"
    src.mkdir()
    smooth_face(0).save(src / "a.jpg", quality=95)
    smooth_face(1).save(src / "b.png")
    smooth_face(2, mode="L").save(src / "gray.png")
    wide = smooth_face(3, size=160).resize((160, 128))
    wide.save(src / "wide.png")
    (src / "notes.txt").write_text("not an image")
    (src / "empty.png").write_bytes(b"")
    jpeg = (src / "a.jpg").read_bytes()
    (src / "corrupt.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    smooth_face(4, size=12).save(src / "tiny.png")
    return src


@pytest.fixture
def hr_folder(tmp_path):
    """5 readable 128-px faces and one broken PNG."""
    src = tmp_path / "hr"
    src.mkdir()
    for i in range(5):
        smooth_face(10 + i).save(src / f"f{i}.png")
    (src / "broken.png").write_bytes(b"\x89PNG garbage")
    return src
