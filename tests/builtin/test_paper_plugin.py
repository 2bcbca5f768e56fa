"""Importing the authors' generator checkpoints, method ``ours``, the plugin's registrations."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from click.testing import CliRunner

from progface import plugins
from progface.builtin.paper import OURS_WEIGHTS, load_ours
from progface.cli import cli
from progface.models.progressive import ProgressiveGenerator
from progface.weights import WeightsError, load_safetensors, save_safetensors, status
from progface.weights.importers import IMPORTERS, import_weights


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    g = ProgressiveGenerator()
    with torch.no_grad():  # non-trivial BN statistics, as a trained checkpoint has
        for m in g.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(200_000)
    return g.eval()


def _authors_ckpt(path, g, prefix="", legacy=False, **extra):
    """The authors' layout: a dict with step, alpha, iteration and model_state_dict."""
    sd = OrderedDict((prefix + k, v.clone()) for k, v in g.state_dict().items())
    torch.save({"step": 3, "alpha": 1.0, "iteration": 200_000, "model_state_dict": sd, **extra},
               path, _use_new_zipfile_serialization=not legacy)  # fmt: skip
    return path


@pytest.mark.parametrize(("prefix", "legacy"), [("", False), ("module.", True)])
def test_import_generator_checkpoint(tmp_path, generator, prefix, legacy):
    src = _authors_ckpt(tmp_path / "generator_checkpoint.ckpt", generator, prefix, legacy)
    dst = import_weights(src, tmp_path / "g.safetensors")  # kind auto-detected
    tensors, config = load_safetensors(dst)
    assert config["step"] == 3 and config["alpha"] == 1.0 and config["iteration"] == 200_000
    assert config["source_ddp_prefix"] is bool(prefix)
    sd = generator.state_dict()
    assert set(tensors) == set(sd) and len(tensors) == 76
    for k, v in sd.items():
        assert torch.equal(tensors[k], v), k
    # method ours reproduces the generator at step 3, alpha 1, mapping [0,1] <-> [-1,1]
    model = load_ours(dst)
    lr = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        expected = generator(lr * 2 - 1, 3, 1.0) * 0.5 + 0.5
        torch.testing.assert_close(model(lr), expected)
    assert model(lr).shape == (2, 3, 128, 128) and not model.training


def test_import_rejects_bad_keys_and_pickled_code(tmp_path, generator):
    sd = OrderedDict(generator.state_dict())
    sd.pop("step3.2.running_var")
    sd["extra.weight"] = torch.zeros(1)
    bad = tmp_path / "bad.ckpt"
    torch.save({"step": 3, "alpha": 1.0, "iteration": 1, "model_state_dict": sd}, bad)
    with pytest.raises(WeightsError, match=r"missing: \['step3.2.running_var'\].*extra.weight"):
        import_weights(bad, tmp_path / "x.safetensors", kind="generator")
    evil = tmp_path / "evil.ckpt"
    _authors_ckpt(evil, generator, hook=torch.nn.ReLU())  # a pickled module object
    with pytest.raises(WeightsError, match="refused"):
        import_weights(evil, tmp_path / "y.safetensors")
    assert not (tmp_path / "y.safetensors").exists()
    with pytest.raises(WeightsError, match="cannot tell"):
        torch.save({"a": torch.zeros(1)}, tmp_path / "other.pth")
        import_weights(tmp_path / "other.pth")
    assert "generator" in IMPORTERS


def test_weights_import_command(tmp_path, generator):
    src = _authors_ckpt(tmp_path / "generator_checkpoint_singleGPU.ckpt", generator)
    result = CliRunner().invoke(cli, ["weights", "import", str(src), "--kind", "generator"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "generator_checkpoint_singleGPU.safetensors").is_file()


def test_weights_import_never_replaces_a_file_without_overwrite(tmp_path, generator):
    src = _authors_ckpt(tmp_path / "g.ckpt", generator)
    mine = tmp_path / "g.safetensors"
    mine.write_text("mine")
    result = CliRunner().invoke(cli, ["weights", "import", str(src)])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {mine}: exists; pass --overwrite to replace it"
    assert mine.read_text() == "mine"
    result = CliRunner().invoke(cli, ["weights", "import", str(src), "--overwrite"])
    assert result.exit_code == 0 and load_safetensors(mine)[1]["step"] == 3


def test_ours_refuses_a_step2_generator(tmp_path, generator):
    path = save_safetensors(generator.state_dict(), tmp_path / "s2.safetensors",
                            {"architecture": "progressive-generator", "step": 2})  # fmt: skip
    with pytest.raises(WeightsError, match="step 2"):
        load_ours(path)


def test_registrations(monkeypatch, tmp_path):
    monkeypatch.setenv("PROGFACE_HOME", str(tmp_path))
    regs = plugins.registries()
    assert "progressive" in regs["generators"] and "progressive" in regs["recipes"]
    ours = regs["methods"].get("ours")
    assert ours.weights == OURS_WEIGHTS and ours.count_parameters() == 8_969_097
    assert status(OURS_WEIGHTS) == "shipped"  # inside the package, whatever the cache holds
    for name in ("pixel", "perceptual", "wgan-gp", "wgan", "heatmap", "attention"):
        assert name in regs["losses"]
    assert (
        float(
            regs["losses"]
            .get("pixel")
            .build(kind="mse")(torch.ones(1, 1, 1, 1), torch.zeros(1, 1, 1, 1))
        )
        == 1.0
    )
    from progface.jobs.runtime import load_method

    model, facts = load_method("ours", "cpu")  # the shipped file: nothing to download
    assert facts["weights"]["sha256"] == OURS_WEIGHTS.sha256 and not model.training


def test_ours_refuses_right_keys_with_wrong_shapes(tmp_path, generator):
    sd = {k: v.clone() for k, v in generator.state_dict().items()}
    sd["to_rgb.0.weight"] = torch.zeros(3, 7, 1, 1)
    path = save_safetensors(sd, tmp_path / "s.safetensors",
                            {"architecture": "progressive-generator", "step": 3})  # fmt: skip
    with pytest.raises(WeightsError, match=r"s.safetensors: does not match .*1 wrong shapes"):
        load_ours(path)


def test_ours_runs_the_generator_at_the_alpha_it_was_exported_with(tmp_path, generator):
    """A run stopped inside step 3's fade-in exports alpha < 1: ours runs it as trained."""
    path = save_safetensors(generator.state_dict(), tmp_path / "fade.safetensors",
                            {"architecture": "progressive-generator", "step": 3, "alpha": 0.25})  # fmt: skip
    model = load_ours(path)
    lr = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(lr), generator(lr * 2 - 1, 3, 0.25) * 0.5 + 0.5)
        assert not torch.allclose(model(lr), generator(lr * 2 - 1, 3, 1.0) * 0.5 + 0.5)
