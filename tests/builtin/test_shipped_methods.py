"""The trained SR weights that ship inside the package: file, hash, facts, loading, quality."""

from __future__ import annotations

import pytest
import torch

from progface import plugins
from progface.runtime import load_method
from progface.weights import PACKAGE_WEIGHTS, load_safetensors, sha256_of, status


def _shipped() -> list[str]:
    methods = plugins.registries()["methods"]
    return sorted(
        n for n in methods.names() if methods.get(n).weights and methods.get(n).weights.shipped
    )


SHIPPED = _shipped()


def test_the_default_methods_ship():
    assert {"vdsr"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_file_hash_and_facts(name):
    spec = plugins.get("methods", name).weights
    path = PACKAGE_WEIGHTS / spec.filename
    assert path.is_file() and status(spec) == "shipped"
    assert len(spec.sha256) == 64 and sha256_of(path) == spec.sha256
    tensors, config = load_safetensors(path)
    dtype = {"float16": torch.float16, "float32": torch.float32}[config["dtype"]]
    assert all(t.dtype == dtype for t in tensors.values() if t.is_floating_point())
    check = config["fp16_check"]  # stored as fp16 only when it costs at most 0.01 dB
    assert (config["dtype"] == "float16") == (abs(check["psnr_fp16"] - check["psnr_fp32"]) <= 0.01)
    assert config["iterations_run"] > 0 and config["licence"] == spec.licence
    assert config["training_data"] == [
        "faces/train/celeba",
        "faces/train/utkface",
        "faces/train/helen",
    ]
    assert config["validation_data"] == "faces/val/celeba_heldout_ids"


@pytest.mark.parametrize("name", SHIPPED)
def test_loads_without_arguments(name):
    model, facts = load_method(name, "cpu")
    assert facts["weights"]["sha256"] == plugins.get("methods", name).weights.sha256
    with torch.no_grad():
        out = model(torch.rand(2, 3, 16, 16))
    assert out.shape == (2, 3, 128, 128) and out.dtype == torch.float32


@pytest.mark.parametrize("name", SHIPPED)
def test_beats_bicubic_on_held_out_faces(name, faces_dir):
    """On 32 held-out CelebA faces (never trained on), mean PSNR above bicubic's."""
    from progface.data.datasets import FaceFolder
    from progface.metrics.quality import psnr

    faces = FaceFolder(faces_dir / "val" / "celeba_heldout_ids", limit=32)
    lr = torch.stack([faces[i]["lr"] for i in range(len(faces))])
    hr = torch.stack([faces[i]["hr"] for i in range(len(faces))])
    model, _ = load_method(name, "cpu")
    bicubic, _ = load_method("bicubic", "cpu")
    with torch.no_grad():
        ours = float(psnr(model(lr).float().clamp(0, 1), hr).mean())
        base = float(psnr(bicubic(lr).float().clamp(0, 1), hr).mean())
    assert ours > base + 0.5, (ours, base)
