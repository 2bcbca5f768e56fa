from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from progface.data.errors import FolderError, ImageError
from progface.io.images import list_images, load_image, load_image_uint8, save_png


def _pixels(tensor: torch.Tensor) -> np.ndarray:
    return np.rint(tensor.permute(1, 2, 0).numpy() * 255).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp"])
def test_lossless_rgb_round_trip(tmp_path, make_smooth, suffix):
    arr = make_smooth(20, 30)
    path = tmp_path / f"face{suffix}"
    Image.fromarray(arr).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    img = load_image(path)
    assert img.dtype == torch.float32 and img.shape == (3, 20, 30)
    assert np.array_equal(_pixels(img), arr)
    assert np.array_equal(load_image_uint8(path), arr)


def test_jpeg_close_to_source(tmp_path, make_smooth):
    arr = make_smooth(32, 32)
    Image.fromarray(arr).save(tmp_path / "a.JPG", quality=98, subsampling=0)
    img = load_image(tmp_path / "a.JPG")
    assert np.abs(_pixels(img).astype(int) - arr).mean() < 3


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.arange(60, dtype=np.uint8).reshape(6, 10) * 4
    Image.fromarray(gray).save(tmp_path / "g.png")
    img = load_image(tmp_path / "g.png")
    assert img.shape == (3, 6, 10)
    assert torch.equal(img[0], img[1]) and torch.equal(img[1], img[2])
    assert img[0, 5, 9].item() == pytest.approx(59 * 4 / 255)


def test_alpha_is_composited_onto_white(tmp_path):
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red 200 everywhere, green/blue 0
    rgba[0, :, 3] = [0, 255, 102]  # transparent, opaque, 40 % opaque
    rgba[1, :, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    px = _pixels(load_image(tmp_path / "a.png"))
    assert px[0, 0].tolist() == [255, 255, 255]
    assert px[0, 1].tolist() == [200, 0, 0]
    blend = [round(200 * 0.4 + 255 * 0.6), round(255 * 0.6), round(255 * 0.6)]
    assert np.abs(px[0, 2].astype(int) - blend).max() <= 1
    assert px[1].tolist() == [[200, 0, 0]] * 3


def test_palette_with_transparency(tmp_path):
    pal = Image.new("P", (4, 2), 0)
    pal.putpalette([10, 20, 30, 0, 0, 0] + [0] * 762)
    pal.putpixel((3, 1), 1)
    pal.info["transparency"] = 1
    pal.save(tmp_path / "p.png", transparency=1)
    px = _pixels(load_image(tmp_path / "p.png"))
    assert px[0, 0].tolist() == [10, 20, 30]
    assert px[1, 3].tolist() == [255, 255, 255]


def test_la_image(tmp_path):
    la = Image.new("LA", (2, 1))
    la.putpixel((0, 0), (100, 255))
    la.putpixel((1, 0), (100, 0))
    la.save(tmp_path / "la.png")
    assert _pixels(load_image(tmp_path / "la.png")).tolist() == [[[100] * 3, [255] * 3]]


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=100)
    px = _pixels(load_image(tmp_path / "c.jpg"))
    assert px.shape == (8, 8, 3)
    assert px[..., 0].min() > 240 and px[..., 1:].max() < 15  # pure red


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_keeps_precision(tmp_path, suffix):
    ramp = np.linspace(0, 65535, 300).round().astype(np.uint16).reshape(1, 300).repeat(2, 0)
    Image.fromarray(ramp).save(tmp_path / f"g16{suffix}")
    img = load_image(tmp_path / f"g16{suffix}")
    assert img.shape == (3, 2, 300)
    assert img.max().item() == 1.0 and img.min().item() == 0.0
    assert torch.allclose(img[0, 0], torch.from_numpy(ramp[0] / 65535).float(), atol=1e-7)
    off_grid = (img * 255 - (img * 255).round()).abs() > 1e-3
    assert off_grid.float().mean() > 0.5  # not just 8-bit steps
    u8 = load_image_uint8(tmp_path / f"g16{suffix}")
    assert (
        u8.dtype == np.uint8 and u8[0, -1, 0] == 255 and u8[0, 150, 0] == round(ramp[0, 150] / 257)
    )


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((16, 32, 3), dtype=np.uint8)
    arr[:, :16] = (255, 0, 0)  # left half red, right half blue
    arr[:, 16:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored image must be rotated 90 degrees clockwise for display
    Image.fromarray(arr).save(tmp_path / "o.jpg", quality=100, exif=exif)
    img = load_image(tmp_path / "o.jpg")
    assert img.shape == (3, 32, 16)
    top, bottom = img[:, :12].mean(dim=(1, 2)), img[:, 20:].mean(dim=(1, 2))
    assert top[0] > 0.9 and top[2] < 0.1  # the red left half is now at the top
    assert bottom[2] > 0.9 and bottom[0] < 0.1


def _assert_image_error(path, reason):
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)
    assert info.value.path == path
    return info.value


def test_missing_file(tmp_path):
    _assert_image_error(tmp_path / "nope.png", "no such file")


def test_folder_instead_of_file(tmp_path):
    _assert_image_error(tmp_path, "is a folder, not an image file")


def test_empty_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    _assert_image_error(tmp_path / "empty.jpg", "empty file (0 bytes)")


def test_text_file_with_image_suffix(tmp_path):
    (tmp_path / "notes.jpg").write_text("not a picture\n")
    err = _assert_image_error(tmp_path / "notes.jpg", "not a readable image: ")
    assert err.reason == "not a readable image: cannot identify image file"


def test_truncated_jpeg(tmp_path, make_smooth):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "a.jpg")
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    _assert_image_error(tmp_path / "half.jpg", "truncated image: image file is truncated")
    (tmp_path / "head.jpg").write_bytes(data[:300])  # cut inside the header
    _assert_image_error(tmp_path / "head.jpg", "truncated image:")


def test_save_png_round_trip_clamps_and_rounds(tmp_path):
    img = torch.tensor([[[-0.5, 0.5 / 255, 1.6 / 255, 2.0]]]).expand(3, 1, 4).clone()
    out = save_png(img, tmp_path / "new" / "sub" / "x.png")
    assert out == tmp_path / "new" / "sub" / "x.png"
    assert np.asarray(Image.open(out))[0, :, 0].tolist() == [0, 0, 2, 255]
    assert sorted(p.name for p in out.parent.iterdir()) == ["x.png"]  # no temp file left


def test_save_png_replaces_and_rejects_bad_shapes(tmp_path, make_smooth):
    arr = make_smooth(9, 7)
    target = tmp_path / "y.png"
    target.write_bytes(b"old")
    save_png(torch.from_numpy(arr).permute(2, 0, 1).float() / 255, target)
    assert np.array_equal(load_image_uint8(target), arr)
    with pytest.raises(ValueError, match=r"\[3, H, W\]"):
        save_png(torch.zeros(1, 3, 4, 4), target)


def test_list_images_sorted_and_filtered(tmp_path):
    for name in ["b.PNG", "a.jpg", "c.webp", "d.txt", ".e.jpg", "f.Jpeg", "g.tiff"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "h.png").write_bytes(b"x")
    names = [p.name for p in list_images(tmp_path)]
    assert names == ["a.jpg", "b.PNG", "c.webp", "f.Jpeg", "g.tiff"]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d: d / "missing", "no such folder"),
        (
            lambda d: (d / "file.png").write_bytes(b"x") and d / "file.png",
            "is a file, not a folder",
        ),
        (lambda d: (d / "only.txt").write_text("x") and d, "no images (.jpg, .jpeg, .png"),
    ],
)
def test_list_images_errors(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(FolderError) as info:
        list_images(path)
    assert reason in str(info.value) and str(info.value).startswith(f"{path}: ")


def _png_claiming(path, width, height):
    """A small PNG whose header claims ``width`` x ``height`` (a decompression bomb's header)."""
    import struct
    import zlib

    Image.new("L", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes of fields
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    path.write_bytes(bytes(data))
    return path


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = _png_claiming(tmp_path / "bomb.png", 10_000, 10_000)
    with pytest.raises(ImageError) as err:
        load_image(path)
    assert str(err.value) == (
        f"{path}: image too large (10000x10000 = 100 Mpx; at most 64 Mpx are decoded, a guard "
        "against decompression bombs)"
    )


def test_every_format_pil_reads_is_an_image(tmp_path):
    Image.new("RGB", (32, 32), (200, 10, 10)).save(tmp_path / "anim.gif")
    Image.new("RGB", (32, 32), (10, 200, 10)).save(tmp_path / "x.tga")
    assert [p.name for p in list_images(tmp_path)] == ["anim.gif", "x.tga"]
    assert load_image(tmp_path / "anim.gif").shape == (3, 32, 32)
