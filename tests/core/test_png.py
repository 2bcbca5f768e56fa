"""progface's PNG writer: files that PIL (libpng's rules) decodes to exactly the pixels given."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from progface.io import png
from progface.io.figures import save_atomic
from progface.io.png import encode_png


@pytest.fixture(params=["isal", "zlib"])
def deflate(request, monkeypatch):
    """Each test below runs with ISA-L's deflate (where installed) and with zlib's."""
    if request.param == "zlib":
        monkeypatch.setattr(png, "isal_zlib", None)
    elif png.isal_zlib is None:
        pytest.skip("isal is not installed")
    return request.param


def _decoded(data: bytes) -> np.ndarray:
    Image.open(io.BytesIO(data)).verify()  # chunk CRCs and structure
    img = Image.open(io.BytesIO(data))
    assert img.mode == "RGB" and img.format == "PNG"
    return np.asarray(img)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 1), (128, 128), (37, 203)])
@pytest.mark.parametrize("level", [0, 1, 3, 9])
def test_round_trip_is_exact(shape, level, deflate):
    rgb = np.random.default_rng(sum(shape) + level).integers(0, 256, (*shape, 3), dtype=np.uint8)
    assert np.array_equal(_decoded(encode_png(rgb, level)), rgb)


def test_the_up_filter_is_what_the_stream_holds(deflate):
    """A hand-checkable image: rows 10 and 250 give the filtered rows [2, 10...] and
    [2, 240...] (250 - 10), and a third row of 5s gives 5 - 250 = 11 modulo 256."""
    rgb = np.stack([np.full((2, 3), v, np.uint8) for v in (10, 250, 5)])
    data = encode_png(rgb)
    start = data.index(b"IDAT") + 4
    length = int.from_bytes(data[start - 8 : start - 4], "big")
    raw = np.frombuffer(zlib.decompress(data[start : start + length]), np.uint8).reshape(3, 7)
    assert raw.tolist() == [[2] + [10] * 6, [2] + [240] * 6, [2] + [11] * 6]
    assert np.array_equal(_decoded(data), rgb)


def test_a_face_costs_no_more_than_a_few_percent_over_pil(faces_or_smooth, deflate):
    ours = len(encode_png(faces_or_smooth, 1))
    buf = io.BytesIO()
    Image.fromarray(faces_or_smooth).save(buf, format="PNG", compress_level=1)
    assert ours <= 1.10 * buf.tell()


@pytest.fixture
def faces_or_smooth():
    """A smooth 128-px image (a face's statistics, without the shared data)."""
    y, x = np.mgrid[0:128, 0:128] / 127.0
    img = np.stack([np.sin(3 * x + y), np.cos(2 * y - x), x * y], -1) * 100 + 120
    noise = np.random.default_rng(0).normal(0, 2, img.shape)
    return np.clip(img + noise, 0, 255).round().astype(np.uint8)


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8),
                                 np.zeros((4, 4, 3), np.float32), np.zeros((0, 4, 3), np.uint8)])  # fmt: skip
def test_bad_arrays_are_refused(bad):
    with pytest.raises(ValueError, match="encode_png needs"):
        encode_png(bad)


def test_save_atomic_writes_arrays_rgb_and_other_modes(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    save_atomic(rgb, tmp_path / "a.png")
    save_atomic(Image.fromarray(rgb), tmp_path / "b.png")
    grey = Image.fromarray(rgb[..., 0])
    save_atomic(grey, tmp_path / "c.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), rgb)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "c.png")), rgb[..., 0])
    with pytest.raises(FileExistsError):
        save_atomic(rgb, tmp_path / "a.png", overwrite=False)


def test_levels_1_to_3_use_isal_where_installed_and_0_stays_stored(monkeypatch):
    """Level 0 means stored blocks (zlib's meaning; ISA-L's 0 compresses); 1-3 go to ISA-L."""
    calls = []

    class Recorder:
        ISAL_BEST_COMPRESSION = 3

        @staticmethod
        def compress(data, level):
            calls.append(level)
            return zlib.compress(data, level)

    monkeypatch.setattr(png, "isal_zlib", Recorder)
    rgb = np.full((4, 4, 3), 7, np.uint8)
    for level in (0, 1, 2, 3, 6):
        assert np.array_equal(_decoded(encode_png(rgb, level)), rgb)
    assert calls == [1, 2, 3]
    stored = encode_png(np.random.default_rng(2).integers(0, 256, (16, 16, 3), dtype=np.uint8), 0)
    assert len(stored) > 16 * (16 * 3 + 1)  # nothing compressed
