"""``progface export``: ONNX files that onnxruntime runs like torch, written safely."""

from __future__ import annotations

import sys

import pytest
import torch
from click.testing import CliRunner

from progface.builtin.paper import load_ours
from progface.cli import cli
from progface.jobs.export import export_onnx, onnxruntime_max_diff
from progface.models.fsrnet import FSRNet
from progface.models.progressive import ProgressiveConfig, ProgressiveGenerator
from progface.models.runner import SuperResolver
from progface.models.urdgn import URDGNGenerator
from progface.models.vdsr import VDSR
from progface.weights import save_safetensors
from progface.weights.generators import save_weights
from tests.models.trained_bn import random_bn

torch.set_num_threads(1)
ONNX_TOL = 1e-4
SMALL = (32, 16, 16, 8)


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROGFACE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PROGFACE_OFFLINE", "1")


def _ours_weights(path, channels=SMALL):
    torch.manual_seed(0)
    g = random_bn(ProgressiveGenerator(config=ProgressiveConfig(channels=channels)))
    config = {"architecture": "progressive-generator", "step": 3, "channels": list(channels)}
    return save_safetensors(g.state_dict(), path, config)


def _baseline_weights(path, net, method):
    torch.manual_seed(0)
    return save_weights(random_bn(net), path, {**net.config_dict(), "method": method})


def _lr(batch):
    return torch.rand(batch, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def test_ours_full_size_onnxruntime_parity(tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install .[onnx])")
    model = load_ours(_ours_weights(tmp_path / "g.safetensors", (512, 256, 128, 64)))
    path = export_onnx(model, tmp_path / "ours.onnx")
    # dynamic batch: exported with 2 faces, run with 3
    assert onnxruntime_max_diff(model, path, _lr(3)) <= ONNX_TOL


def test_fsrnet_onnxruntime_parity(tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install .[onnx])")
    torch.manual_seed(0)
    model = SuperResolver(random_bn(FSRNet(num_parsing=0)))
    path = export_onnx(model, tmp_path / "fsrnet.onnx")
    assert onnxruntime_max_diff(model, path, _lr(1)) <= ONNX_TOL


@pytest.mark.parametrize("method", ["ours", "vdsr", "urdgn"])
def test_cli_exports_learned_methods(tmp_path, method):
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install .[onnx])")
    weights = tmp_path / "w.safetensors"
    if method == "ours":
        _ours_weights(weights)
    elif method == "vdsr":  # bicubic resize inside: ONNX Resize must match torch's
        _baseline_weights(weights, VDSR(depth=4, width=8), "vdsr")
    else:
        _baseline_weights(weights, URDGNGenerator(widths=(4, 8, 8, 8)), "urdgn")
    out = tmp_path / "m.onnx"
    args = ["export", method, "--format", "onnx", "-o", str(out), "--weights", str(weights)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert out.is_file() and f"wrote {out}" in result.output
    diff = float(result.output.rsplit(":", 1)[1])
    assert diff <= ONNX_TOL
    assert not list(tmp_path.glob(".*.tmp"))


def test_without_onnx_the_error_names_the_extra(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "onnx" else real(n, *a)
    )
    weights = _ours_weights(tmp_path / "w.safetensors")
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(cli, ["export", "ours", "-o", str(out), "--weights", str(weights)])
    assert result.exit_code == 1 and not out.exists()
    assert (
        result.output.strip()
        == "Error: ONNX export needs the onnx package: pip install 'progface[onnx]'"
    )


def test_cli_never_overwrites_without_flag(tmp_path):
    pytest.importorskip("onnx", reason="onnx not installed (pip install .[onnx])")
    weights = _ours_weights(tmp_path / "w.safetensors")
    out = tmp_path / "m.onnx"
    out.write_bytes(b"keep me")
    args = ["export", "ours", "-o", str(out), "--weights", str(weights)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "exists; pass --overwrite" in result.output and len(result.output.splitlines()) == 1
    assert out.read_bytes() == b"keep me"
    result = CliRunner().invoke(cli, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() != b"keep me"


@pytest.mark.parametrize("method", ["bilinear", "bicubic"])
def test_cli_refuses_methods_without_network(tmp_path, method):
    result = CliRunner().invoke(cli, ["export", method, "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1
    assert f"method {method!r} has no network to export" in result.output
    assert len(result.output.splitlines()) == 1 and not (tmp_path / "m.onnx").exists()


def test_cli_missing_weights_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["export", "fsrnet", "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1 and len(result.output.splitlines()) == 1
    assert "fsrnet_celeba.safetensors is not available" in result.output


def test_failed_export_leaves_nothing(tmp_path, monkeypatch):
    pytest.importorskip("onnx", reason="onnx not installed (pip install .[onnx])")

    def broken(*args, **kwargs):
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(torch.onnx, "export", broken)
    model = load_ours(_ours_weights(tmp_path / "w.safetensors"))
    with pytest.raises(RuntimeError, match="exporter crashed"):
        export_onnx(model, tmp_path / "m.onnx")
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob(".*.tmp"))


def test_cli_without_onnxruntime_exports_unchecked(tmp_path, monkeypatch):
    pytest.importorskip("onnx", reason="onnx not installed (pip install .[onnx])")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    weights = _ours_weights(tmp_path / "w.safetensors")
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(cli, ["export", "ours", "-o", str(out), "--weights", str(weights)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "onnxruntime not installed, not checked" in result.output


def test_bench_runs_a_network_in_onnxruntime_with_the_torch_scores(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from PIL import Image

    from progface.jobs.bench import run_bench
    from progface.jobs.runtime import load_method

    faces = tmp_path / "faces"
    faces.mkdir()
    gen = torch.Generator().manual_seed(0)
    for i in range(3):
        pixels = (torch.rand(128, 128, 3, generator=gen) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(faces / f"{i}.png")
    kwargs = dict(metrics=("psnr",), device="cpu", progress=False)
    ref = run_bench(["vdsr"], faces, **kwargs).summary["vdsr"]["psnr"]
    onnx = run_bench(["vdsr"], faces, runtime="onnxruntime", **kwargs)
    assert onnx.summary["vdsr"]["psnr"] == pytest.approx(ref, abs=1e-3)
    model, facts = load_method("vdsr", "cpu", runtime="onnxruntime")
    assert facts["runtime"] == "onnxruntime" and facts["onnx"].endswith(".onnx")
    assert facts["onnx"].startswith(str(tmp_path / "cache" / "onnx"))  # made once, cached
    with pytest.raises(ValueError, match="fixed resize"):
        load_method("bicubic", "cpu", runtime="onnxruntime")
    with pytest.raises(ValueError, match="unknown runtime"):
        load_method("vdsr", "cpu", runtime="tvm")


def test_upscale_command_runs_in_onnxruntime(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import json

    from PIL import Image

    faces = tmp_path / "in"
    faces.mkdir()
    Image.new("RGB", (128, 128), (120, 90, 70)).save(faces / "a.png")
    out = tmp_path / "out"
    args = ["upscale", str(faces), "-o", str(out), "--method", "vdsr", "--runtime",
            "onnxruntime", "--device", "cpu"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runtime"] == "onnxruntime" and (out / "sr" / "a.png").is_file()
