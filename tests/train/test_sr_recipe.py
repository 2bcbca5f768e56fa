"""The generic ``sr`` recipe: any registered generator, the [losses] table, derived methods."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from progface.hookspecs import hookimpl
from progface.registry import GeneratorSpec
from progface.train.config import load_config
from progface.train.loop import Context, train
from progface.train.recipes.sr import SRRecipe
from progface.weights import WeightsError, load_safetensors
from tests.losses.toy_source import TinySource
from tests.train.test_progressive import Faces

CPU = Context(torch.device("cpu"))


class TinyNet(torch.nn.Module):
    """Bicubic 16 -> 128 plus a 3x3 conv residual: the generator contract via forward(lr)."""

    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        torch.nn.init.normal_(self.conv.weight, std=0.2)  # far from the identity: much to learn
        self.width = width

    def forward(self, lr):
        up = F.interpolate(lr, size=(128, 128), mode="bicubic", align_corners=False)
        return up + self.conv(up)


class TinyPlugin:
    @hookimpl
    def register_generators(self, register):
        register(GeneratorSpec("test-tiny", lambda **o: TinyNet(**o), "bicubic + conv"))
        register(GeneratorSpec("test-wrong-size", lambda: torch.nn.Conv2d(3, 3, 1), "16 -> 16"))


@pytest.fixture
def tiny(register_plugin):
    register_plugin(TinyPlugin(), "test-tiny-plugin")


def _batch(n=2):
    data = Faces(n)
    return {k: torch.stack([data[i][k] for i in range(n)]) for k in ("hr", "x64", "x32", "lr")}


def test_pixel_only_overfits_a_batch(tiny):
    torch.manual_seed(0)
    cfg = load_config(recipe="sr", overrides=["options.generator=test-tiny", "options.lr=0.01",
                                              "options.iterations=40"])  # fmt: skip
    assert cfg.losses == {"pixel": 1.0}  # the recipe's default table
    recipe = SRRecipe(cfg, CPU)
    batch = _batch()
    before = float((recipe.sample(batch["lr"]) - batch["hr"]).abs().mean())
    first = recipe.train_step(batch, 0)
    assert sorted(first) == ["lr", "pixel", "total"] and first["total"] == first["pixel"]
    # pixel = L1 in the paper losses' [-1, 1] units: twice the L1 of [0, 1] images
    assert first["pixel"] == pytest.approx(2 * before, rel=1e-5)
    for it in range(1, 40):
        last = recipe.train_step(batch, it)
    assert last["pixel"] < 0.5 * first["pixel"], (first, last)


def test_losses_errors(tiny):
    gen = "options.generator=test-tiny"
    with pytest.raises(KeyError, match=r"unknown loss 'pixle'; did you mean 'pixel'"):
        SRRecipe(load_config(recipe="sr", overrides=[gen, "losses.pixle=1.0"]), CPU)
    with pytest.raises(
        ValueError, match=r"losses.pixel: recipe 'sr' has one step: give one weight .*\[1.0, 2.0\]"
    ):
        SRRecipe(load_config(recipe="sr", overrides=[gen, "losses.pixel=[1.0, 2.0]"]), CPU)
    with pytest.raises(ValueError, match="loss 'adversarial' needs a critic, which recipe 'sr'"):
        SRRecipe(load_config(recipe="sr", overrides=[gen, "losses.adversarial=0.1"]), CPU)
    with pytest.raises(ValueError, match=r"no term has a nonzero weight"):
        SRRecipe(load_config(recipe="sr", overrides=[gen, "losses.pixel=0"]), CPU)
    with pytest.raises(ValueError, match=r"loss_options.perceptual: no such term"):
        SRRecipe(load_config(recipe="sr", overrides=[gen, "loss_options.perceptual.x=1"]), CPU)
    with pytest.raises(ValueError, match=r"needs a generator: --generator NAME .*test-tiny"):
        SRRecipe(load_config(recipe="sr"), CPU)
    wrong = SRRecipe(load_config(recipe="sr", overrides=["options.generator=test-wrong-size"]), CPU)
    with pytest.raises(ValueError, match=r"returned shape \(2, 3, 16, 16\).*needs \(2, 3, 128"):
        wrong.train_step(_batch(), 0)


def test_heatmap_terms_share_one_run_of_the_source_on_the_target(tiny):
    """heatmap + attention: the source runs on the SR faces (heatmap term) and once on the
    target (the batch's shared ``heatmaps``), not once per term; options reach the loss."""
    torch.manual_seed(0)
    source = TinySource(68)
    calls = []
    source.register_forward_hook(lambda m, args, out: calls.append(args[0].requires_grad))
    cfg = load_config(recipe="sr", overrides=["options.generator=test-tiny", "losses.heatmap=2.0",
                                              "losses.attention=3.0",
                                              "loss_options.pixel.kind=mse"])  # fmt: skip
    recipe = SRRecipe(cfg, CPU, heatmap_source=source)
    assert next(t for t in recipe.terms if t.key == "pixel").module.kind == "mse"
    terms = recipe.train_step(_batch(), 0)
    assert sorted(calls) == [False, True]  # target (no graph), then SR (gradients flow)
    assert terms["total"] == pytest.approx(
        terms["pixel"] + 2 * terms["heatmap"] + 3 * terms["attention"], rel=1e-6
    )
    assert not source.training and all(p.grad is None for p in source.parameters())


def test_trained_weights_become_a_method(tiny, tmp_path):
    """The loop's export names the generator; load_method derives the method from it; bench's
    --ablation maps an sr run folder to that method."""
    from progface.jobs.bench_ablation import read_run
    from progface.jobs.runtime import load_method, method_spec

    torch.manual_seed(0)
    cfg = load_config(recipe="sr", overrides=[
        "options.generator=test-tiny", "options.generator_options={width = 5}",
        f"out={json.dumps(str(tmp_path / 'run'))}", "options.iterations=3", "loop.batch_size=2",
        "data.workers=0", "loop.progress=false", "loop.log_every=1", "loop.val_every=0",
        "loop.checkpoint_every=0"])  # fmt: skip
    run = train(cfg, train_data=Faces(4), val_data=Faces(2))
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records if r["kind"] == "train"] == [1, 2, 3]
    val = next(r for r in records if r["kind"] == "val")
    assert val["size"] == 128 and math.isfinite(val["psnr"]) and "bilinear_psnr" in val
    tensors, facts = load_safetensors(run / "weights.safetensors")
    assert facts["generator"] == "test-tiny" and facts["generator_options"] == {"width": 5}
    assert facts["architecture"] == "test-tiny" and facts["losses"] == {"pixel": 1.0}

    assert method_spec("test-tiny").generator == "test-tiny"
    model, info = load_method("test-tiny", "cpu", run / "weights.safetensors")
    assert isinstance(model.net, TinyNet) and model.net.width == 5
    assert info["weights"]["path"] == str(run / "weights.safetensors")
    lr = Faces(2).lr
    with torch.no_grad():
        want = TinyNet()
        want.load_state_dict(tensors)
        torch.testing.assert_close(model(lr), want(lr))
    assert read_run(run).method == "test-tiny"

    with pytest.raises(WeightsError, match=r"no method of its own.*--weights test-tiny=RUN"):
        load_method("test-tiny", "cpu")
    with pytest.raises(WeightsError, match=r"holds weights of 'test-tiny', not of generator "):
        load_method("test-wrong-size", "cpu", run / "weights.safetensors")
    with pytest.raises(KeyError, match="unknown method 'test-tinny'"):
        load_method("test-tinny", "cpu")


def test_a_builtin_generator_trained_by_sr_runs_as_its_method(tmp_path):
    """An sr-trained VDSR (a small one) is run by the registered vdsr method and equals the
    recipe's own samples."""
    from progface.jobs.bench_ablation import _recipe_method
    from progface.jobs.runtime import load_method
    from progface.weights import save_safetensors

    torch.manual_seed(0)
    cfg = load_config(recipe="sr", overrides=[
        "options.generator=vdsr", "options.generator_options={depth = 3, width = 4}"])  # fmt: skip
    recipe = SRRecipe(cfg, CPU)
    recipe.train_step(_batch(), 0)
    tensors, facts = recipe.export()
    assert facts["architecture"] == "vdsr" and facts["depth"] == 3 and "method" not in facts
    path = save_safetensors(tensors, tmp_path / "w.safetensors", facts)
    model, _ = load_method("vdsr", "cpu", path)
    lr = Faces(2).lr
    torch.testing.assert_close(model(lr), recipe.sample(lr))
    assert _recipe_method("sr", "vdsr") == "vdsr"
    assert _recipe_method("progressive", "progressive") == "ours"
    assert _recipe_method("progressive", None) == "ours"
