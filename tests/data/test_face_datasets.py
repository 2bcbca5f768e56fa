from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from progface.data.datasets import CelebA, FaceFolder
from progface.data.degrade import degrade_chain, prepare_hr
from progface.data.errors import FolderError, ImageError
from progface.io.images import load_image

HEADER = "file,landmarks_from," + ",".join(f"x{i},y{i}" for i in range(68))
SHAPES = {"hr": (3, 128, 128), "x64": (3, 64, 64), "x32": (3, 32, 32), "lr": (3, 16, 16)}


def _write_folder(folder, make_smooth, sizes):
    folder.mkdir(exist_ok=True)
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(make_smooth(h, w, i)).save(folder / f"img{i}.png")
    return folder


def test_face_folder_items(tmp_path, make_smooth):
    root = _write_folder(tmp_path / "faces", make_smooth, [(128, 128), (150, 150), (90, 90)])
    data = FaceFolder(root)
    assert len(data) == 3 and len(FaceFolder(root, limit=2)) == 2
    item = data[1]
    assert item["name"] == "img1.png" and "landmarks" not in item
    for key, shape in SHAPES.items():
        t = item[key]
        assert t.shape == shape and t.dtype == torch.float32 and not t.requires_grad
        assert 0 <= t.min() and t.max() <= 1
        assert torch.allclose(t * 255, (t * 255).round(), atol=1e-4)  # quantized, as PIL stores
    hr = prepare_hr(load_image(root / "img1.png"), "none")
    assert torch.equal(item["hr"], hr)
    x64, x32, lr = degrade_chain(hr[None], quantize=True)
    assert torch.equal(item["x64"], x64[0]) and torch.equal(item["lr"], lr[0])
    assert torch.equal(data[0]["hr"], load_image(root / "img0.png"))  # 128 px: untouched


def test_face_folder_unquantized_and_collate(tmp_path, make_smooth):
    root = _write_folder(tmp_path / "faces", make_smooth, [(140, 140), (140, 140)])
    data = FaceFolder(root, quantize=False)
    off_grid = (data[0]["lr"] * 255 - (data[0]["lr"] * 255).round()).abs().max()
    assert off_grid > 0.01
    batch = next(iter(DataLoader(data, batch_size=2)))
    assert batch["name"] == ["img0.png", "img1.png"]
    assert batch["hr"].shape == (2, 3, 128, 128) and batch["lr"].shape == (2, 3, 16, 16)


def test_face_folder_crop_errors(tmp_path, make_smooth):
    root = _write_folder(tmp_path / "faces", make_smooth, [(100, 120)])
    with pytest.raises(ImageError, match=r"img0.png: not square \(120x100\): use --crop center"):
        FaceFolder(root)[0]
    assert FaceFolder(root, crop="center")[0]["hr"].shape == (3, 128, 128)
    with pytest.raises(ValueError, match="unknown crop policy"):
        FaceFolder(root, crop="middle")
    with pytest.raises(FolderError, match="no such folder"):
        FaceFolder(tmp_path / "missing")


def _blob_image(height, width, centres, sigma=3.0):
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.zeros((height, width))
    for cx, cy in centres:
        img += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
    return np.repeat(np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


def _centroid(image: torch.Tensor, x: float, y: float, radius: int = 8) -> tuple[float, float]:
    g = image[0]
    x0, y0 = int(round(x)) - radius, int(round(y)) - radius
    win = g[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1].double()
    ys, xs = torch.meshgrid(
        torch.arange(y0, y0 + win.shape[0]).double(),
        torch.arange(x0, x0 + win.shape[1]).double(),
        indexing="ij",
    )
    return ((win * xs).sum() / win.sum()).item(), ((win * ys).sum() / win.sum()).item()


def test_landmarks_follow_center_crop_and_resize(tmp_path):
    """A 200x160 image, centre-cropped to (20, 0, 180, 160) and resized by 0.8 to 128."""
    root = tmp_path / "faces"
    root.mkdir()
    centres = [(99.5, 79.5), (50.0, 40.0), (150.0, 130.0)]
    Image.fromarray(_blob_image(160, 200, centres)).save(root / "a.png")
    Image.fromarray(_blob_image(160, 200, centres[::-1])).save(root / "b.png")
    Image.fromarray(_blob_image(160, 200, centres)).save(root / "c.png")  # no landmarks
    pts = np.zeros((68, 2))
    pts[:3] = centres
    (root / "landmarks68.csv").write_text(
        HEADER + "\na.png,gt_300w," + ",".join(f"{v:.2f}" for v in pts.reshape(-1)) + "\n"
    )
    pts_b = pts.copy()
    pts_b[:3] = centres[::-1]
    body = "\n".join(f"{x} {y}" for x, y in pts_b)
    (root / "b.pts").write_text(f"version: 1\nn_points: 68\n{{\n{body}\n}}\n")

    data = FaceFolder(root, crop="center", landmarks=True, quantize=False)
    assert [p.name for p in data.files] == ["a.png", "b.png"]
    assert data.num_without_landmarks == 1
    item = data[0]
    lm = item["landmarks"]
    assert lm.shape == (68, 2) and lm.dtype == torch.float32
    expected = torch.tensor([[63.5, 63.5], [23.9, 31.9], [103.9, 103.9]])  # (x - 20 + .5) * .8 - .5
    assert torch.allclose(lm[:3], expected, atol=1e-4)
    assert torch.allclose(data[1]["landmarks"][:3], expected.flip(0), atol=1e-4)
    for x, y in expected.tolist():  # the blobs really are there in the HR image
        cx, cy = _centroid(item["hr"], x, y)
        assert abs(cx - x) < 0.2 and abs(cy - y) < 0.2


def test_landmarks_required_but_absent(tmp_path, make_smooth):
    root = _write_folder(tmp_path / "faces", make_smooth, [(64, 64)])
    with pytest.raises(FolderError, match="no images with landmarks"):
        FaceFolder(root, landmarks=True)


def test_real_face_folder_with_landmarks(faces_dir):
    data = FaceFolder(faces_dir / "val" / "helen_test", landmarks=True, limit=4)
    assert len(data) == 4
    item = data[0]
    assert item["hr"].shape == (3, 128, 128)
    assert 0 <= item["landmarks"].min() and item["landmarks"].max() < 128


def _fake_celeba(root, make_smooth, flat: bool):
    image_dir = root / "img_align_celeba" if flat else root / "CelebA" / "Img" / "img_align_celeba"
    anno = root if flat else root / "Anno"
    image_dir.mkdir(parents=True)
    anno.mkdir(parents=True, exist_ok=True)
    codes = [0, 0, 1, 2, 0, 2, 0, 1, 2, 2]
    lines = []
    for i, code in enumerate(codes, start=1):
        name = f"{i:06d}.jpg"
        Image.fromarray(make_smooth(218, 178, i)).save(image_dir / name, quality=95)
        lines.append(f"{name} {code}")
    (anno / "list_eval_partition.txt").write_text("\n".join(reversed(lines)) + "\n")
    return image_dir


@pytest.mark.parametrize("flat", [False, True])
def test_celeba_splits(tmp_path, make_smooth, flat):
    image_dir = _fake_celeba(tmp_path, make_smooth, flat)
    counts = {s: len(CelebA(tmp_path, split=s)) for s in ("train", "val", "test")}
    assert counts == {"train": 4, "val": 2, "test": 4}
    test = CelebA(tmp_path, split="test")
    assert [p.name for p in test.files] == ["000004.jpg", "000006.jpg", "000009.jpg", "000010.jpg"]
    assert test.image_dir == image_dir
    item = test[0]
    assert item["name"] == "000004.jpg" and item["lr"].shape == (3, 16, 16)
    full = load_image(image_dir / "000004.jpg")
    assert torch.equal(item["hr"], prepare_hr(full, "celeba"))  # box (0, 20, 178, 198)
    assert len(CelebA(tmp_path, split="train", limit=3)) == 3


def test_celeba_errors(tmp_path, make_smooth):
    with pytest.raises(FolderError, match="not a CelebA folder: no img_align_celeba/"):
        CelebA(tmp_path)
    image_dir = _fake_celeba(tmp_path, make_smooth, flat=True)
    with pytest.raises(ValueError, match="unknown CelebA split 'valid'"):
        CelebA(tmp_path, split="valid")
    (image_dir / "000006.jpg").unlink()
    with pytest.raises(FolderError, match=r"1 of 4 images of split 'test' are missing \(first: 0"):
        CelebA(tmp_path, split="test")
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 7\n")
    with pytest.raises(ValueError, match=r"list_eval_partition.txt:1: expected '<file> <0\|1\|2>'"):
        CelebA(tmp_path)


def test_cached_faces_are_lossless_and_loaded_once(tmp_path, make_smooth, monkeypatch):
    from progface.data.datasets import CachedFaces

    root = _write_folder(tmp_path / "faces", make_smooth, [(150, 150), (128, 128)])
    plain, cached = FaceFolder(root), CachedFaces(FaceFolder(root))
    for i in range(2):
        first, again, want = cached[i], cached[i], plain[i]
        assert first["name"] == want["name"]
        for key in SHAPES:
            assert torch.equal(first[key], want[key]) and torch.equal(again[key], want[key])
    calls = []
    monkeypatch.setattr(FaceFolder, "__getitem__", lambda self, i: calls.append(i))
    cached[0], cached[1]  # noqa: B018 (served from memory: the folder is not read again)
    assert calls == [] and cached._items[0]["hr"].dtype == torch.uint8


def test_cached_faces_refuse_unquantized_items(tmp_path, make_smooth):
    from progface.data.datasets import CachedFaces

    root = _write_folder(tmp_path / "faces", make_smooth, [(140, 140)])
    with pytest.raises(ValueError, match=r"item 0 'hr' is not quantized.*data.quantize=true"):
        CachedFaces(FaceFolder(root, quantize=False))[0]
