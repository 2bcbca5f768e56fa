"""Inference precision of the jobs: auto resolution, folded networks, fallback, manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from progface.cli import cli
from progface.jobs.runtime import load_method, pick_precision


def test_pick_precision():
    native = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert pick_precision("auto", "cpu") == ("bf16" if native else "fp32")
    assert pick_precision("fp32", "cpu") == "fp32" and pick_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="fp16 runs on CUDA only"):
        pick_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="must be one of auto, fp32, bf16, fp16"):
        pick_precision("int8", "cpu")


def test_folded_fp32_computes_what_the_eager_method_computes():
    lr = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    eager, facts = load_method("ours", "cpu")
    folded, folded_facts = load_method("ours", "cpu", precision="fp32")
    assert "precision" not in facts and folded_facts["precision"] == "folded fp32"
    with torch.no_grad():
        assert float((folded(lr) - eager(lr)).abs().max()) < 1e-5
    bicubic, bicubic_facts = load_method("bicubic", "cpu", precision="bf16")
    assert bicubic_facts["precision"] == "no network"  # classical methods run as they are


def test_a_network_that_cannot_be_folded_runs_eager_with_a_warning(monkeypatch, capsys):
    import progface.models.inference as inference

    def refuse(*args, **kwargs):
        raise RuntimeError("cannot fold this")

    monkeypatch.setattr(inference, "optimize_for_inference", refuse)
    model, facts = load_method("vdsr", "cpu", precision="fp32")
    assert facts["precision"] == "eager fp32" and isinstance(model, torch.nn.Module)
    assert (
        "method 'vdsr' runs unoptimised in eager fp32 (cannot fold this)" in capsys.readouterr().err
    )


def test_the_torch_compile_runtime_compiles_the_folded_network(monkeypatch):
    """``--runtime torch-compile`` hands the folded network to torch.compile (stood in for by a
    recorder: real compilation takes seconds and is timed in benchmarks/speed.py) and computes
    what eager folded fp32 computes; a failing compile falls back to eager with a warning."""
    compiled = []

    def recorder(net):
        compiled.append(net)
        return net

    monkeypatch.setattr(torch, "compile", recorder)
    lr = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    model, facts = load_method("vdsr", "cpu", runtime="torch-compile")
    eager, _ = load_method("vdsr", "cpu", precision="fp32")
    assert facts["precision"] == "folded fp32, compiled" and facts["runtime"] == "torch-compile"
    assert len(compiled) == 1 and compiled[0] is model.net
    assert torch.equal(model(lr), eager(lr))

    def broken(net):
        def run(*args):
            raise RuntimeError("no C++ compiler")

        return run

    monkeypatch.setattr(torch, "compile", broken)
    model, _ = load_method("vdsr", "cpu", precision="fp32", runtime="torch-compile")
    with pytest.warns(UserWarning, match="torch.compile failed, running eager: RuntimeError"):
        out = model(lr)
    assert torch.equal(out, eager(lr)) and model.compile_error.startswith("RuntimeError")


def test_upscale_records_the_precision_and_bf16_stays_close(tmp_path):
    faces = tmp_path / "faces"
    faces.mkdir()
    g = torch.Generator().manual_seed(1)
    for i in range(2):
        arr = (torch.rand(8, 8, 3, generator=g) * 255).byte().numpy()
        Image.fromarray(arr).resize((128, 128), Image.BILINEAR).save(faces / f"{i}.png")
    outs = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        result = CliRunner().invoke(
            cli, ["upscale", str(faces), "-o", str(out), "--precision", precision]
        )
        assert result.exit_code == 0, result.output
        assert json.loads((out / "manifest.json").read_text())["precision"] == f"folded {precision}"
        outs[precision] = torch.from_numpy(np.array(Image.open(out / "sr" / "0.png"))).float()
    mse = float(((outs["fp32"] - outs["bf16"]) / 255).pow(2).mean())
    assert 10 * torch.log10(torch.tensor(1 / max(mse, 1e-12))) > 40  # bf16 ~ fp32 (PSNR > 40 dB)
