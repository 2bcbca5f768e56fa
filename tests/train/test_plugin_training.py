"""A third-party plugin's generator and loss are live: an installed throwaway package (entry
point in group ``progface``) is trained with ``progface train --recipe sr`` and benchmarked and
upscaled from its weights, with no change to progface."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import pip_install_target, smooth_faces

REPO = Path(__file__).resolve().parents[2]  # the checkout these tests belong to

PLUGIN = '''
"""Throwaway progface plugin: a tiny generator and a gradient loss."""
import torch
import torch.nn.functional as F
from progface.hookspecs import hookimpl
from progface.registry import GeneratorSpec, LossSpec


class TinyGen(torch.nn.Module):
    """Bicubic 16 -> 128 px plus one 3x3 conv residual."""

    def __init__(self, scale=1.0):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.scale = scale

    def forward(self, lr):
        up = F.interpolate(lr, size=(128, 128), mode="bicubic", align_corners=False)
        return up + self.scale * self.conv(up)


class GradientLoss(torch.nn.Module):
    """Mean absolute difference of the horizontal and vertical image gradients."""

    def forward(self, sr, hr, batch):
        assert batch["lr"].shape[-1] == 16 and hr.shape == sr.shape
        dy = lambda x: x[..., 1:, :] - x[..., :-1, :]
        dx = lambda x: x[..., :, 1:] - x[..., :, :-1]
        return (dy(sr) - dy(hr)).abs().mean() + (dx(sr) - dx(hr)).abs().mean()


@hookimpl
def register_generators(register):
    register(GeneratorSpec("throwaway-gen", lambda **o: TinyGen(**o), "bicubic + conv"))


@hookimpl
def register_losses(register):
    register(LossSpec("throwaway-grad", lambda **o: GradientLoss(), "gradient L1"))
'''

PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "progface-throwaway"
version = "0.0.1"

[project.entry-points.progface]
throwaway = "progface_throwaway"

[tool.setuptools]
py-modules = ["progface_throwaway"]
"""


def _faces(folder: Path, n: int = 6) -> Path:
    return smooth_faces(folder, n, grid=6)


def _install(tmp: Path) -> Path:
    """pip-install the package into its own folder (the venv is left as it is)."""
    pkg, site = tmp / "pkg", tmp / "site"
    pkg.mkdir()
    (pkg / "pyproject.toml").write_text(PYPROJECT)
    (pkg / "progface_throwaway.py").write_text(textwrap.dedent(PLUGIN))
    done = pip_install_target(pkg, site, "--no-index")
    if done.returncode != 0 and "setuptools" in done.stderr:
        pytest.skip(f"setuptools is needed to install the throwaway plugin: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr
    assert (site / "progface_throwaway-0.0.1.dist-info" / "entry_points.txt").is_file()
    return site


def _progface(args: list[str], site: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
           "PROGFACE_LOAD_PLUGINS": "throwaway", "PROGFACE_STRICT_PLUGINS": "1",
           "PROGFACE_HOME": str(home), "OMP_NUM_THREADS": "1"}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "progface", *args], capture_output=True,
                          text=True, env=env, cwd=home)  # fmt: skip
    assert done.returncode == 0, f"progface {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_a_plugin_generator_and_loss_train_bench_and_upscale(tmp_path):
    site = _install(tmp_path)
    faces = _faces(tmp_path / "faces")
    run, home = tmp_path / "run", tmp_path / "home"
    home.mkdir()

    _progface(["train", "--recipe", "sr", "--generator", "throwaway-gen",
               "--set", "losses.throwaway-grad=0.1", "--data", str(faces), "--val", str(faces),
               "--out", str(run), "--set", "options.generator_options={scale = 0.5}",
               "--set", "options.iterations=4", "--set", "options.lr=0.01",
               "--set", "loop.batch_size=2", "--set", "loop.log_every=2",
               "--set", "loop.val_every=0", "--set", "data.workers=0",
               "--set", "loop.progress=false"], site, home)  # fmt: skip
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in records if r["kind"] == "train"]
    assert [r["iteration"] for r in logged] == [2, 4]
    for r in logged:
        assert math.isfinite(r["throwaway-grad"]) and r["throwaway-grad"] > 0
        assert r["total"] == pytest.approx(r["pixel"] + 0.1 * r["throwaway-grad"], rel=1e-5)
    from progface.weights import load_safetensors

    _, facts = load_safetensors(run / "weights.safetensors")
    assert facts["generator"] == "throwaway-gen" and facts["generator_options"] == {"scale": 0.5}
    assert facts["losses"] == {"pixel": 1.0, "throwaway-grad": 0.1}

    weights = run / "weights.safetensors"
    out = tmp_path / "bench"
    done = _progface(["bench", "--methods", "throwaway-gen", "--weights",
                      f"throwaway-gen={weights}", "--ablation", str(run), "--data", str(faces),
                      "--metrics", "psnr", "--out", str(out), "--device", "cpu"], site, home)  # fmt: skip
    assert "| throwaway-gen |" in done.stdout and "| run |" in done.stdout, done.stdout
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for label in ("throwaway-gen", "run"):
        values = [float(r["value"]) for r in rows if r["method"] == label]
        assert len(values) == 6 and all(math.isfinite(v) for v in values), label
    summary = json.loads((out / "summary.json").read_text())
    assert summary["not_run"] == {}
    assert summary["methods"]["throwaway-gen"]["weights"]["path"] == str(weights)
    assert summary["methods"]["run"]["method"] == "throwaway-gen"  # the sr run's generator

    done = _progface(["upscale", str(faces), "-o", str(tmp_path / "up"), "--method",
                      "throwaway-gen", "--weights", str(weights), "--device", "cpu"], site, home)  # fmt: skip
    assert "throwaway-gen: 6 written" in done.stdout, done.stdout
    assert len(list((tmp_path / "up" / "sr").glob("*.png"))) == 6
