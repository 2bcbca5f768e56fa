"""The VDSR and URDGN recipes on the generic loop, and the recipe registrations."""

from __future__ import annotations

import pytest
import torch

from progface import plugins
from progface.jobs.runtime import load_method
from progface.train.checkpoint import latest_checkpoint
from progface.train.config import load_config
from progface.train.loop import train
from progface.train.recipes.urdgn import URDGNOptions, balance_updates, urdgn_learning_rate
from progface.train.recipes.vdsr import AdjustableClipSGD, random_patches
from progface.weights import load_safetensors
from tests.train.baseline_helpers import SmoothFaces, cfg, run_log

torch.set_num_threads(1)  # small tensors on a shared CPU


def test_recipes_are_registered_with_paper_and_small_presets():
    regs = plugins.registries()["recipes"]
    for name in ("vdsr", "urdgn", "fsrnet", "fsrgan"):
        spec = regs.get(name)
        assert spec.plugin == "progface.builtin.baselines"
        assert {"default", "small"} <= set(spec.presets)
    vdsr = load_config(recipe="vdsr")
    assert (vdsr.loop.batch_size, vdsr.options.lr, vdsr.options.momentum) == (64, 0.1, 0.9)
    assert (vdsr.options.weight_decay, vdsr.options.patch, vdsr.options.loss) == (
        1e-4,
        41,
        "euclidean",
    )
    small = load_config(recipe="urdgn", preset="small")
    assert small.loop.threads == 1 and small.options.adversarial_weight == 0.01
    fsrgan = load_config(recipe="fsrgan")
    assert (fsrgan.options.adversarial_weight, fsrgan.options.perceptual_weight) == (1e-3, 1e-1)
    assert fsrgan.options.perceptual_layers == ["relu5_3"] and fsrgan.loop.batch_size == 14
    assert load_config(recipe="fsrnet").options.adversarial_weight == 0.0


@pytest.mark.parametrize(
    "d_real,d_fake,expected",
    [
        (0.5, 0.5, (True, True)),  # both in [0.3, 0.7]
        (0.2, 0.5, (False, True)),  # D too good on real faces: freeze D
        (0.5, 0.25, (False, True)),
        (0.8, 0.5, (True, False)),  # D too weak: freeze G
        (0.5, 0.75, (True, False)),
        (0.2, 0.8, (True, True)),  # both would freeze: both update
        (0.3, 0.7, (True, True)),  # the limits themselves do not freeze
    ],
)
def test_urdgn_balance_rule(d_real, d_fake, expected):
    assert balance_updates(d_real, d_fake) == expected


def test_urdgn_learning_rate_schedule():
    o = URDGNOptions(lr=1e-3, epoch_iterations=100)
    assert urdgn_learning_rate(o, 0, 0) == pytest.approx(1e-3 / 50)
    assert urdgn_learning_rate(o, 9, 0) == pytest.approx(1e-3 / 50)
    assert urdgn_learning_rate(o, 10, 0) == pytest.approx(1e-3 / 5)
    assert urdgn_learning_rate(o, 29, 0) == pytest.approx(1e-3 / 5)
    assert urdgn_learning_rate(o, 30, 99) == pytest.approx(1e-3)
    assert urdgn_learning_rate(o, 30, 250) == pytest.approx(1e-3 * 0.99**2)
    assert urdgn_learning_rate(o, 30, 100 * 10_000) == pytest.approx(1e-6)  # the floor


def test_adjustable_clip_sgd_step_by_hand():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = AdjustableClipSGD([p], theta=0.01, lr=0.1)  # bound 0.01 / 0.1 = 0.1
    p.grad = torch.tensor([1.0, -0.5, 1e-4])
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([-0.01, 0.01, -1e-5]))
    assert opt.state_dict()["param_groups"][0]["theta"] == 0.01
    opt.param_groups[0]["lr"] = 0.01  # bound grows to 1: nothing is clipped
    p.grad = torch.tensor([0.5, 0.0, 0.0])
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([-0.015, 0.01, -1e-5]))


def test_random_patches_take_the_same_window():
    x = torch.arange(2 * 128 * 128, dtype=torch.float32).view(2, 1, 128, 128)
    xs, ys = random_patches(x, x + 0.5, 41, torch.Generator().manual_seed(0))
    assert xs.shape == (2, 1, 41, 41)
    torch.testing.assert_close(ys, xs + 0.5)
    assert random_patches(x, x, 0)[0] is x


def test_vdsr_recipe_trains_exports_and_loads_as_method(tmp_path):
    run = train(cfg("vdsr", tmp_path / "v", "options.iterations=2"), train_data=SmoothFaces())
    terms = [r for r in run_log(run) if r["kind"] == "train"]
    assert [r["iteration"] for r in terms] == [1, 2] and terms[0]["lr"] == 0.1
    tensors, facts = load_safetensors(run / "weights.safetensors")
    assert facts["method"] == "vdsr" and facts["iterations"] == 2 and facts["in_chans"] == 3
    model, _ = load_method("vdsr", "cpu", run / "weights.safetensors")
    ckpt, _ = load_safetensors(latest_checkpoint(run / "checkpoints"))
    for k, v in tensors.items():
        assert torch.equal(ckpt[f"model.generator.{k}"], v), k
    assert model(SmoothFaces().lr[:1]).shape == (1, 3, 128, 128)


def test_vdsr_y_recipe_trains_the_luma_network(tmp_path):
    run = train(
        cfg("vdsr", tmp_path / "y", "options.iterations=1", "options.in_chans=1",
             'options.loss="mse"', "options.patch=0"),
        train_data=SmoothFaces(2),
    )  # fmt: skip
    tensors, facts = load_safetensors(run / "weights.safetensors")
    assert facts["in_chans"] == 1 and tensors["input.weight"].shape == (64, 1, 3, 3)


def test_urdgn_recipe_resume_continues_update_counters_exactly(tmp_path):
    data = SmoothFaces()
    straight = train(cfg("urdgn", tmp_path / "a", "options.iterations=2"), train_data=data)
    train(cfg("urdgn", tmp_path / "b", "options.iterations=1"), train_data=data)
    split = train(cfg("urdgn", tmp_path / "b", "options.iterations=2"), train_data=data,
                  resume=True)  # fmt: skip
    a, meta_a = load_safetensors(latest_checkpoint(straight / "checkpoints"))
    b, meta_b = load_safetensors(latest_checkpoint(split / "checkpoints"))
    assert meta_a["recipe_state"] == meta_b["recipe_state"]
    state = meta_a["recipe_state"]
    log = [r for r in run_log(straight) if r["kind"] == "train"]
    assert state["g_updates"] == sum(r["g_updated"] for r in log)
    assert state["d_updates"] == sum(r["d_updated"] for r in log)
    for k in a:
        if k.startswith(("model.", "optim.")):
            assert torch.equal(a[k], b[k]), k
    # the first 10 updates of each network run at lr / 50
    for net in ("generator", "discriminator"):
        groups = meta_a["optimizers"][net]["param_groups"]
        assert groups[0]["lr"] == pytest.approx(1e-3 / 50)
    _, facts = load_safetensors(straight / "weights.safetensors")
    assert facts["method"] == "urdgn" and facts["architecture"] == "urdgn"


@pytest.mark.parametrize(
    "name,batch", [("vdsr", 64), ("urdgn", 64), ("fsrnet", 14), ("fsrgan", 14)]
)
def test_paper_protocol_config_files_resolve(name, batch):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "baselines" / f"{name}_celeba.toml"
    c = load_config(path)
    assert (c.recipe, c.preset, c.loop.batch_size) == (name, "default", batch)
    assert (c.data.dataset, c.data.split, c.data.val_split) == ("celeba", "train", "test")
    if name.startswith("fsr"):
        assert c.options.heatmap_source == "fan"
