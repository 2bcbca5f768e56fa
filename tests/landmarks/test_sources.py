"""Heatmap sources: the protocol, the landmarks renderer, the network sources, dlib68."""

from __future__ import annotations

import builtins

import pytest
import torch

from progface.landmarks.fan import FAN
from progface.landmarks.fan_distilled import FanDistilled
from progface.landmarks.heatmaps import decode_heatmaps
from progface.landmarks.sources import (
    Dlib68Source,
    FanDistilledSource,
    FanSource,
    HeatmapSource,
    LandmarkHeatmaps,
)

from .conftest import template_points


def test_landmarks_source_renders_stored_points_at_the_image_size():
    pts = template_points()
    source = LandmarkHeatmaps(pts, sigma=1.5)
    assert isinstance(source, HeatmapSource) and source.num_landmarks == 68
    for size, sigma_px in ((64, 1.5), (128, 3.0)):
        hm = source(torch.rand(2, 3, size, size))
        assert hm.shape == (2, 68, size, size)
        back = decode_heatmaps(hm)
        want = (pts + 0.5) * size / 128 - 0.5  # pixel-centre rescaling from the 128 frame
        assert (back - want).abs().max() <= 0.25 + 1e-5
        # the blob's width follows the size: value at one sigma from the peak is exp(-1/2)
        x0, y0 = 64 * size // 128, 64 * size // 128
        flat = LandmarkHeatmaps(torch.tensor([[float(x0), float(y0)]]), points_size=size, sigma=1.5)
        one = flat(torch.rand(1, 3, size, size))[0, 0]
        assert one[y0, x0] == pytest.approx(1.0)
        expected = torch.exp(torch.tensor(-0.5 * (1 / sigma_px) ** 2 * 1.0)).item()
        assert one[y0, x0 + 1].item() == pytest.approx(expected, rel=1e-5)


def test_landmarks_source_from_a_csv_by_name(face_folder):
    source = LandmarkHeatmaps(face_folder)  # the folder's landmarks68.csv
    hm = source(torch.rand(2, 3, 64, 64), names=["face_01.png", "face_00.png"])
    from progface.data.landmarks_io import read_landmarks_csv

    table = read_landmarks_csv(face_folder / "landmarks68.csv")
    want = (torch.from_numpy(table["face_01.png"].points) + 0.5) / 2 - 0.5
    assert (decode_heatmaps(hm)[0] - want).abs().max() <= 0.25 + 1e-5
    with pytest.raises(ValueError, match="names"):
        source(torch.rand(1, 3, 64, 64))
    with pytest.raises(KeyError, match="nope.png"):
        source(torch.rand(1, 3, 64, 64), names=["nope.png"])


def test_landmarks_source_from_a_pts_file(tmp_path):
    pts = template_points()
    path = tmp_path / "face.pts"
    body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in pts.tolist())
    path.write_text(f"version: 1\nn_points: 68\n{{\n{body}\n}}\n")
    hm = LandmarkHeatmaps(path)(torch.rand(1, 3, 128, 128))
    assert (decode_heatmaps(hm)[0] - pts).abs().max() <= 0.25 + 1e-3


def test_fan_distilled_source_is_frozen_but_passes_gradients_to_images():
    source = FanDistilledSource(FanDistilled())
    assert not source.training
    source.train()  # cannot be switched back to train mode
    assert not source.training and not source.net.training
    assert all(not p.requires_grad for p in source.parameters())
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    hm = source(x)
    assert hm.shape == (2, 68, 32, 32) and isinstance(source, HeatmapSource)
    hm.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert source.features(x).shape == (2, 128, 32, 32)
    with pytest.raises(ValueError, match="fan-distilled"):
        source(torch.rand(3, 32, 32))


def test_fan_distilled_work_size_runs_at_64_px():
    net = FanDistilled().eval()
    source = FanDistilledSource(net, work_size=64)
    x = torch.rand(2, 3, 128, 128, requires_grad=True)
    hm = source(x)
    with torch.no_grad():
        small = net(
            torch.nn.functional.interpolate(x, size=(64, 64), mode="bilinear", antialias=True)
        )
        want = torch.nn.functional.interpolate(small, size=(128, 128), mode="bilinear")
    assert hm.shape == (2, 68, 128, 128) and torch.allclose(hm, want, atol=1e-6)
    hm.sum().backward()
    assert x.grad.abs().sum() > 0
    with torch.no_grad():  # at the work size itself: the plain network
        assert torch.equal(source(x[:, :, :64, :64]), net(x[:, :, :64, :64]))


def test_fan_source_resizes_to_256_and_back():
    torch.manual_seed(0)
    net = FAN(num_modules=1)  # same code path, a quarter of the cost
    source = FanSource(net)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        hm = source(x)
        # by hand: bilinear x4 to 256, FAN's last stack is already 64 px = the input size
        up = torch.nn.functional.interpolate(x, size=(256, 256), mode="bilinear")
        want = net(up)[-1]
    assert hm.shape == (1, 68, 64, 64) and torch.equal(hm, want)
    with torch.no_grad():
        hm128 = source(torch.rand(1, 3, 128, 128))
        feats = source.features(x)
    assert hm128.shape == (1, 68, 128, 128) and feats.shape == (1, 256, 64, 64)


def test_dlib68_missing_extra_gives_a_clear_message(monkeypatch):
    real_import = builtins.__import__

    def no_dlib(name, *args, **kwargs):
        if name in ("dlib", "face_recognition_models"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dlib)
    with pytest.raises(ImportError, match=r"pip install 'progface\[dlib\]'"):
        Dlib68Source()


def test_dlib68_finds_landmarks_on_a_real_face(pfsr_checkpoint):
    pytest.importorskip("dlib", reason="dlib not installed (pip install 'progface[dlib]')")
    from progface.landmarks.sources import dlib_model_path

    try:
        dlib_model_path()
    except ImportError:
        pytest.skip("face-recognition-models not installed")
    from progface.landmarks.data import load_landmark_faces

    faces = load_landmark_faces([pfsr_checkpoint.parents[2] / "data/faces/val/helen_test"], limit=4)
    source = Dlib68Source()
    hm = source(faces.float_images())
    assert hm.shape == (4, 68, 128, 128)
    err = (decode_heatmaps(hm) - faces.points).norm(dim=-1).mean(dim=1)
    assert err.median() < 4.0  # px at 128, against the human labels


def _doc_blocks() -> list[str]:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "heatmap_sources.md").read_text()
    return [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]


def test_documented_source_trains_the_progressive_recipe(face_folder, tmp_path):
    """The user-written source of docs/heatmap_sources.md, passed to the trainer from Python."""
    from progface.losses.heatmap import check_source
    from progface.train.config import load_config
    from progface.train.loop import train
    from progface.weights import load_safetensors, save_safetensors

    namespace: dict = {}
    exec(_doc_blocks()[0], namespace)  # the class definition, as documented
    weights = tmp_path / "student.safetensors"
    save_safetensors(FanDistilled().state_dict(), weights, {"architecture": "fan_distilled"})
    source = namespace["EyesAndMouth"](weights)
    assert isinstance(source, HeatmapSource) and check_source(source) is source
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    out = source(x)
    assert out.shape == (2, 32, 64, 64)
    out.sum().backward()
    assert x.grad.abs().sum() > 0  # differentiable, as the losses need
    cfg = load_config(None, [
        f'out="{tmp_path / "run"}"', f'data.train="{face_folder}"', f'data.val="{face_folder}"',
        "options.iterations=[1, 1, 1]", "options.perceptual=false", "options.channels=[16, 8, 8, 8]",
        "loop.batch_size=2", "loop.progress=false", "data.workers=0",
    ], recipe="progressive")  # fmt: skip
    run = train(cfg, heatmap_source=source)
    assert (run / "metrics.jsonl").is_file()
    assert load_safetensors(run / "weights.safetensors")[1]["heatmap_source"] == "EyesAndMouth"
