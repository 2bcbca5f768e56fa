from __future__ import annotations

import pytest
import torch

from progface import plugins
from progface.builtin.baselines import SHIPPED_SHA256
from progface.jobs.runtime import load_method
from progface.models.fsrnet import FSRNet
from progface.models.urdgn import URDGNGenerator
from progface.models.vdsr import VDSR
from progface.weights import WeightsError
from progface.weights.generators import save_weights


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROGFACE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PROGFACE_OFFLINE", "1")


def test_registered_generators_and_methods():
    assert "progface.builtin.baselines" in plugins.DEFAULT_PLUGINS
    regs = plugins.registries()
    counts = {"vdsr": 668_227, "urdgn": 1_054_243, "fsrnet": 3_272_463}
    for name, count in counts.items():
        spec = regs["generators"].get(name)
        assert spec.plugin == "progface.builtin.baselines"
        assert sum(p.numel() for p in spec.build().parameters()) == count
    assert sum(
        p.numel() for p in regs["generators"].get("vdsr").build(in_chans=1).parameters()
    ) == (665_921)
    methods = {"vdsr": 668_227, "urdgn": 1_054_243, "fsrnet": 3_271_044, "fsrgan": 3_271_044}
    for name, count in methods.items():
        spec = regs["methods"].get(name)
        assert spec.count_parameters() == count
        shipped = name in SHIPPED_SHA256
        assert spec.weights is not None and spec.weights.shipped == shipped
        assert spec.weights.filename == f"{name}_{'faces' if shipped else 'celeba'}.safetensors"


@pytest.mark.parametrize(
    "method", sorted({"vdsr", "urdgn", "fsrnet", "fsrgan"} - set(SHIPPED_SHA256))
)
def test_missing_weights_is_a_clear_error(method):
    with pytest.raises(WeightsError, match=f"{method}_celeba.safetensors is not available"):
        load_method(method, "cpu")


@pytest.mark.parametrize(
    "method,net",
    [
        ("vdsr", VDSR(in_chans=1)),
        ("urdgn", URDGNGenerator()),
        ("fsrnet", FSRNet(num_parsing=0)),
        ("fsrgan", FSRNet(num_parsing=0)),
    ],
)
def test_method_loads_its_weights_and_matches_the_network(tmp_path, method, net):
    net.eval()
    path = save_weights(net, tmp_path / "w.safetensors", {**net.config_dict(), "method": method})
    model, facts = load_method(method, "cpu", path)
    assert facts["weights"]["path"] == str(path) and len(facts["weights"]["sha256"]) == 64
    assert not model.training
    lr = torch.rand(2, 3, 16, 16)
    with torch.inference_mode():
        sr = model(lr)
        expected = net.super_resolve(lr)
    assert sr.shape == (2, 3, 128, 128)
    torch.testing.assert_close(sr, expected, rtol=0, atol=0)


def test_method_refuses_another_methods_weights(tmp_path):
    net = FSRNet(num_parsing=0)
    path = save_weights(net, tmp_path / "g.safetensors", {**net.config_dict(), "method": "fsrgan"})
    with pytest.raises(WeightsError, match="holds 'fsrgan' weights, not 'fsrnet'"):
        load_method("fsrnet", "cpu", path)
    with pytest.raises(WeightsError, match="holds vdsr weights, not urdgn"):
        vdsr = VDSR()
        load_method(
            "urdgn", "cpu", save_weights(vdsr, tmp_path / "v.safetensors", vdsr.config_dict())
        )


def test_method_uses_a_file_put_in_the_cache(tmp_path):
    net = FSRNet(num_parsing=0).eval()
    save_weights(net, tmp_path / "cache" / "fsrnet_celeba.safetensors", net.config_dict())
    model, facts = load_method("fsrnet", "cpu")
    assert facts["weights"]["path"].endswith("fsrnet_celeba.safetensors")
