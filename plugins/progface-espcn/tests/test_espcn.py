"""ESPCN: parameter count by hand, the sub-pixel layout, the shipped weights, the installed plugin."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import progface_espcn as pe

PACKAGE = Path(__file__).resolve().parents[1]


def test_parameter_count_by_hand():
    conv1 = 3 * 64 * 5 * 5 + 64  # 4,864: 5x5, 3 -> 64
    conv2 = 64 * 32 * 3 * 3 + 32  # 18,464: 3x3, 64 -> 32
    conv3 = 32 * (3 * 8 * 8) * 3 * 3 + 3 * 8 * 8  # 55,488: 3x3, 32 -> 3 r^2 = 192
    assert conv1 + conv2 + conv3 == 78_816
    net = pe.build()
    assert sum(p.numel() for p in net.parameters()) == 78_816
    assert pe.count_parameters() == 78_816
    # the residual option adds no parameters; the paper's Y network (1 channel) has its own count
    assert sum(p.numel() for p in pe.build(residual=True).parameters()) == 78_816
    y = pe.ESPCNConfig(in_chans=1)
    assert pe.count_parameters(y) == (25 + 1) * 64 + (64 * 9 + 1) * 32 + (32 * 9 + 1) * 64
    assert sum(p.numel() for p in pe.build(in_chans=1).parameters()) == pe.count_parameters(y)


def test_shape_and_the_paper_layout():
    net = pe.build().eval()
    assert [type(m).__name__ for m in net.children()] == ["Conv2d"] * 3 + ["PixelShuffle"]
    assert [m.kernel_size for m in (net.conv1, net.conv2, net.conv3)] == [(5, 5), (3, 3), (3, 3)]
    with torch.no_grad():
        out = net.super_resolve(torch.rand(2, 3, 16, 16))
    assert out.shape == (2, 3, 128, 128) and out.dtype == torch.float32
    with pytest.raises(ValueError, match=r"\[B,3,H,W\]"):
        net.super_resolve(torch.rand(2, 1, 16, 16))
    # JSON options (lists) build the same config as the dataclass' tuples
    assert pe.build(widths=[64, 32], kernels=[5, 3, 3]).config == pe.ESPCNConfig()
    with pytest.raises(ValueError, match="odd"):
        pe.ESPCNConfig(kernels=(4, 3, 3))


def test_sub_pixel_shuffle_places_channel_c_r2_plus_i_r_plus_j_at_offset_i_j():
    """Known answer: with a zero last conv, the output is its bias laid out by the pixel
    shuffle, channel ``c*64 + 8i + j`` at pixel ``(8y + i, 8x + j)`` of colour ``c``."""
    net = pe.build().eval()
    bias = torch.arange(192, dtype=torch.float32)
    with torch.no_grad():
        net.conv3.weight.zero_()
        net.conv3.bias.copy_(bias)
        out = net(torch.rand(1, 3, 16, 16))[0]
    c, i, j, y, x = 2, 5, 3, 7, 11
    assert out[c, 8 * y + i, 8 * x + j] == c * 64 + 8 * i + j
    expected = bias.view(3, 8, 8).repeat(1, 16, 16)
    assert torch.equal(out, expected)
    # residual=True adds the bicubic (a = -0.5, PIL's) upsampled LR face and nothing else
    res = pe.build(residual=True).eval()
    res.load_state_dict(net.state_dict())
    lr = torch.rand(1, 3, 16, 16)
    bicubic = F.interpolate(lr, size=(128, 128), mode="bicubic", align_corners=False,
                            antialias=True)  # fmt: skip
    with torch.no_grad():
        assert torch.allclose(res(lr)[0], expected + bicubic[0], atol=1e-5)


def test_shipped_file_hash_and_facts():
    from progface.weights import load_safetensors, sha256_of, status

    path = pe.shipped_path()
    assert path.is_file() and path.parent.name == "weights"
    assert len(pe.WEIGHTS_SHA256) == 64 and sha256_of(path) == pe.WEIGHTS_SHA256
    assert pe.SHIPPED.sha256 == pe.WEIGHTS_SHA256 and status(pe.SHIPPED) == "shipped"
    tensors, config = load_safetensors(path)
    assert config["generator"] == "espcn" and config["recipe"] == "sr"
    assert config["generator_options"] == {} and config["residual"] is False  # paper layout
    dtype = {"float16": torch.float16, "float32": torch.float32}[config["dtype"]]
    assert all(t.dtype == dtype for t in tensors.values())
    check = config["fp16_check"]  # stored as fp16 only when it costs at most 0.01 dB
    assert (config["dtype"] == "float16") == (abs(check["psnr_fp16"] - check["psnr_fp32"]) <= 0.01)
    assert sum(t.numel() for t in tensors.values()) == 78_816
    assert config["training_data"] == ["faces/train/celeba"]
    assert config["validation_data"] == "faces/val/celeba_heldout_ids"
    assert config["iterations_run"] > 0 and config["licence"] == pe.LICENCE
    # the packaged fp32 figure is the training run's own validation (same faces, same chain)
    assert check["psnr_fp32"] == pytest.approx(config["val"]["psnr"], abs=1e-3)


def test_method_loads_the_shipped_weights_without_arguments():
    from progface.jobs.runtime import load_method

    model, facts = load_method("espcn", "cpu")
    assert facts["weights"]["sha256"] == pe.WEIGHTS_SHA256
    assert Path(facts["weights"]["path"]) == pe.shipped_path()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 16, 16))
    assert out.shape == (2, 3, 128, 128) and out.dtype == torch.float32


def _mean_psnr(method: str, folder: Path, limit: int) -> float:
    from progface.data.datasets import FaceFolder
    from progface.jobs.runtime import load_method
    from progface.metrics.quality import psnr

    faces = FaceFolder(folder, limit=limit)
    model, _ = load_method(method, "cpu")
    items = [faces[i] for i in range(len(faces))]
    lr = torch.stack([it["lr"] for it in items])
    hr = torch.stack([it["hr"] for it in items])
    with torch.no_grad():
        return float(psnr(model(lr).float().clamp(0, 1), hr).mean())


def test_method_reproduces_the_reference_psnr_and_beats_bicubic(heldout_faces):
    """The shipped file, loaded through the method, gives the PSNR measured when it was
    packaged on the first held-out faces; and it is above bicubic's on the same faces."""
    from progface.weights import load_safetensors

    _, config = load_safetensors(pe.shipped_path())
    reference = config["reference"]
    measured = _mean_psnr("espcn", heldout_faces, reference["faces"])
    assert measured == pytest.approx(reference["psnr"], abs=1e-3)
    assert measured > _mean_psnr("bicubic", heldout_faces, reference["faces"]) + 0.5


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """This package pip-installed (no dependencies) into a --target folder; the environment
    that puts it on PYTHONPATH for ``python -m progface``."""
    tmp = tmp_path_factory.mktemp("espcn-install")
    src = tmp / "src"  # a copy: building in place would leave build/ in the repository
    shutil.copytree(
        PACKAGE, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    )
    target = tmp / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--target", str(target), str(src)],
        check=True, capture_output=True,
    )  # fmt: skip
    path = os.pathsep.join(p for p in (str(target), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "PROGFACE_STRICT_PLUGINS": "1", "target": str(target)}


def _progface(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "progface", *args], capture_output=True, text=True, env=env
    )


def test_installed_package_carries_the_weights_and_registers_through_its_entry_point(installed):
    shipped = Path(installed["target"]) / "progface_espcn" / "weights" / pe.WEIGHTS_FILE
    assert shipped.is_file() and shipped.read_bytes() == pe.shipped_path().read_bytes()
    proc = _progface(installed, "plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["espcn"]["builtin"] is False and rows["espcn"]["version"] == "0.1.0"
    assert rows["espcn"]["registered"] == {"generators": ["espcn"], "methods": ["espcn"]}


def test_bench_runs_espcn_on_synthetic_faces(installed, tmp_path):
    faces = tmp_path / "faces"
    faces.mkdir()
    for seed in range(4):  # smooth random 128 px images
        rng = np.random.default_rng(seed)
        small = Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8))
        small.resize((128, 128), Image.BICUBIC).save(faces / f"face_{seed}.png")
    out = tmp_path / "bench"
    proc = _progface(installed, "bench", "--methods", "espcn,bicubic", "--metrics", "psnr",
                     "--data", str(faces), "--out", str(out), "--device", "cpu")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| espcn"))
    psnr, images = (float(c) for c in re.findall(r"\|\s*([\d.]+)", row))
    assert images == 4 and 10 < psnr < 60
    summary = json.loads((out / "summary.json").read_text())
    assert summary["methods"]["espcn"]["psnr"] == pytest.approx(psnr, abs=5e-3)  # the table rounds


def test_upscale_runs_espcn_and_matches_the_method(installed, tmp_path):
    from progface.jobs.runtime import load_method

    faces = tmp_path / "lr"
    faces.mkdir()
    rng = np.random.default_rng(0)
    lr = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
    Image.fromarray(lr).save(faces / "face.png")
    out = tmp_path / "sr"
    proc = _progface(installed, "upscale", str(faces), "--method", "espcn", "--out", str(out),
                     "--device", "cpu", "--precision", "fp32")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    written = out / "sr" / "face.png"  # OUT/sr/<stem>.png
    sr = np.asarray(Image.open(written).convert("RGB"), dtype=np.float32)
    assert sr.shape == (128, 128, 3)
    model, _ = load_method("espcn", "cpu")
    with torch.no_grad():
        ref = model(torch.from_numpy(lr / 255.0).float().permute(2, 0, 1)[None])[0]
    ref = (ref.clamp(0, 1) * 255).round().permute(1, 2, 0).numpy()
    assert np.abs(sr - ref).max() <= 1  # the file is the method's output, to rounding
