"""The paper's recipe: schedule, presets, all five losses, resume across a step change."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import Dataset

from progface.data.degrade import degrade_chain
from progface.losses.perceptual import PerceptualLoss
from progface.train.checkpoint import latest_checkpoint
from progface.train.config import load_config
from progface.train.context import Context
from progface.train.loop import train
from progface.train.recipes.progressive import ProgressiveOptions, ProgressiveRecipe, schedule
from progface.weights import load_safetensors
from tests.losses.toy_source import TinySource

TINY = "options.channels=[16, 8, 8, 8]"


class TinyFeatures(torch.nn.Module):
    """Stands in for VGG16 (the real one is tested in tests/losses/test_perceptual.py)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, stride=4)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return [h, torch.nn.functional.avg_pool2d(h, 2)]


def tiny_perceptual():
    torch.manual_seed(3)
    return PerceptualLoss(vgg=TinyFeatures(), layers=("relu1_2", "relu2_2"))


class Faces(Dataset):
    """Smooth random 128 px 'faces' with the paper's LR chain."""

    def __init__(self, n: int = 6) -> None:
        gen = torch.Generator().manual_seed(7)
        hr = torch.nn.functional.interpolate(torch.rand(n, 3, 8, 8, generator=gen), size=128,
                                             mode="bilinear", align_corners=False)  # fmt: skip
        self.hr = hr
        self.x64, self.x32, self.lr = degrade_chain(hr, (64, 32, 16))

    def __len__(self):
        return len(self.hr)

    def __getitem__(self, i):
        return {"name": f"{i}", "hr": self.hr[i], "x64": self.x64[i], "x32": self.x32[i],
                "lr": self.lr[i]}  # fmt: skip


def test_schedule_defaults_and_paper():
    code = ProgressiveOptions()
    assert schedule(code, 0) == (1, -1.0) and schedule(code, 49_999) == (1, -1.0)
    assert schedule(code, 50_000) == (2, 0.0)
    assert schedule(code, 62_500) == (2, 0.5) and schedule(code, 75_000) == (2, 1.0)
    assert schedule(code, 99_999) == (2, 1.0)
    assert schedule(code, 100_000) == (3, 0.0) and schedule(code, 112_500) == (3, 0.5)
    assert schedule(code, 125_000) == (3, 1.0) and schedule(code, 199_999) == (3, 1.0)
    paper = load_config(preset="paper").options
    assert paper.pixel_loss == "mse"
    assert schedule(paper, 75_000) == (2, 0.5) and schedule(paper, 150_000) == (3, 0.5)
    flat = load_config(preset="table2-no-progressive").options
    assert schedule(flat, 0) == (3, -1.0) and sum(flat.iterations) == 200_000


def test_table2_presets():
    cfgs = {name: load_config(preset=name) for name in
            ("table2-pixel-wgan", "table2-perceptual", "table2-heatmap", "table2-full")}  # fmt: skip
    rows = {name: cfg.options for name, cfg in cfgs.items()}
    losses = {name: cfg.losses for name, cfg in cfgs.items()}
    assert not rows["table2-pixel-wgan"].perceptual
    assert losses["table2-pixel-wgan"]["heatmap"] == [0, 0, 0]
    assert rows["table2-perceptual"].perceptual and losses["table2-perceptual"]["attention"] == [
        0,
        0,
        0,
    ]
    assert losses["table2-heatmap"]["heatmap"] == [0, 50, 50]
    assert losses["table2-heatmap"]["attention"] == [0, 0, 0]
    full = rows["table2-full"]
    assert full == ProgressiveOptions()
    full_losses = losses["table2-full"]
    assert full_losses["attention"] == [0, 500, 50] and full_losses["perceptual"] == [
        1e-2,
        1e-2,
        1e-3,
    ]
    assert full_losses["adversarial"] == [1, 1, 0.1] and full_losses["pixel"] == [10, 10, 10]
    assert full.lr == 1e-3 and full.betas == [0.0, 0.99]
    assert load_config().loop.batch_size == 16


def test_all_losses_over_three_steps():
    torch.manual_seed(0)
    cfg = load_config(overrides=[TINY, "options.iterations=[1, 1, 2]", "options.fade=[0.0, 1.0, 1.0]",
                              ])  # fmt: skip
    source = TinySource(num_landmarks=68)
    recipe = ProgressiveRecipe(
        cfg, Context(torch.device("cpu")), heatmap_source=source, perceptual=tiny_perceptual()
    )
    data = Faces(2)
    batch = {k: torch.stack([data[i][k] for i in range(2)]) for k in ("hr", "x64", "x32", "lr")}
    seen = []
    for it in range(4):
        terms = recipe.train_step(batch, it)
        seen.append((recipe.state()["step"], sorted(terms)))
        assert all(torch.isfinite(torch.tensor(v)) for v in terms.values())
    d_terms = ["d_drift", "d_gp", "d_total", "d_wasserstein"]
    base = ["adversarial", "g_total", "perceptual", "pixel"]
    assert seen[0] == (1, sorted(base + d_terms))
    assert seen[1] == (2, sorted(base + d_terms + ["attention", "heatmap"]))
    assert seen[3] == (3, sorted(base + d_terms + ["attention", "heatmap"]))
    assert recipe.state() == {"step": 3, "alpha": 0.5}  # fade over 2 iterations, k = 1
    assert not source.training and all(p.grad is None for p in source.parameters())
    assert recipe.sample(batch["lr"]).shape == (2, 3, 128, 128)
    tensors, facts = recipe.export()
    assert facts["step"] == 3 and facts["perceptual"] == "vgg16 cache"
    assert facts["heatmap_source"] == "TinySource"


def test_perceptual_off_needs_no_vgg_and_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("PROGFACE_HOME", str(tmp_path))
    monkeypatch.setenv("PROGFACE_OFFLINE", "1")
    cfg = load_config(overrides=[TINY, "options.perceptual=false"], preset="table2-pixel-wgan")
    recipe = ProgressiveRecipe(cfg, Context(torch.device("cpu")))
    assert recipe.perceptual is None and recipe.export()[1]["perceptual"] == "off"
    from progface.weights import WeightsError

    with pytest.raises(WeightsError, match=r"vgg16-397923af.pth.*options.perceptual=false"):
        ProgressiveRecipe(load_config(overrides=[TINY]), Context(torch.device("cpu")),
                          heatmap_source=TinySource(68))  # fmt: skip


def _run(out, *extra):
    return load_config(overrides=[f'out="{out}"', "loop.batch_size=2", "data.workers=0",
                                  "loop.progress=false", "loop.log_every=1", "loop.val_every=0",
                                  "loop.checkpoint_every=0", "loop.keep_checkpoints=1", *extra])  # fmt: skip


def _compare(a_run, b_run):
    a, meta_a = load_safetensors(latest_checkpoint(a_run / "checkpoints"))
    b, meta_b = load_safetensors(latest_checkpoint(b_run / "checkpoints"))
    assert meta_a["iteration"] == meta_b["iteration"]
    assert meta_a["recipe_state"] == meta_b["recipe_state"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    return meta_a


def test_resume_bit_exact_across_step_change_with_all_losses(tmp_path):
    opts = [TINY, "options.iterations=[2, 2]", "options.fade=[0.0, 1.0, 1.0]"]

    def objs():  # the same frozen source and feature net in every run
        perceptual = tiny_perceptual()
        torch.manual_seed(4)
        return {"heatmap_source": TinySource(68), "perceptual": perceptual}

    train(_run(tmp_path / "a", *opts), train_data=Faces(), **objs())
    train(_run(tmp_path / "b", *opts, "loop.stop_at=3"), train_data=Faces(), **objs())
    train(_run(tmp_path / "b", *opts), train_data=Faces(), resume=True, **objs())
    meta = _compare(tmp_path / "a", tmp_path / "b")
    assert meta["iteration"] == 4 and meta["recipe_state"] == {"step": 2, "alpha": 0.5}


@pytest.mark.slow
def test_resume_bit_exact_paper_architecture_step1(tmp_path):
    # the full-size networks (16 -> 32 px needs them as they are): 2 straight == 1 + resume + 1
    opts = ["options.iterations=[2]", "options.perceptual=false"]
    train(_run(tmp_path / "a", *opts), train_data=Faces(2))
    train(_run(tmp_path / "b", *opts, "loop.stop_at=1"), train_data=Faces(2))
    train(_run(tmp_path / "b", *opts), train_data=Faces(2), resume=True)
    meta = _compare(tmp_path / "a", tmp_path / "b")
    assert meta["iteration"] == 2 and meta["config"]["options"]["perceptual"] is False
    weights, facts = load_safetensors(tmp_path / "a" / "weights.safetensors")
    assert facts["step"] == 1 and facts["perceptual"] == "off" and len(weights) == 76


def test_bf16_autocast_and_channels_last_step():
    torch.manual_seed(0)
    cfg = load_config(overrides=[TINY, "options.iterations=[1, 1]"])
    ctx = Context(torch.device("cpu"), bf16=True, channels_last=True)
    recipe = ProgressiveRecipe(
        cfg, ctx, heatmap_source=TinySource(68), perceptual=tiny_perceptual()
    )
    data = Faces(2)
    batch = {
        k: ctx.images(torch.stack([data[i][k] for i in range(2)]))
        for k in ("hr", "x64", "x32", "lr")
    }
    assert batch["hr"].is_contiguous(memory_format=torch.channels_last)
    for it in range(2):
        terms = recipe.train_step(batch, it)
        assert all(torch.isfinite(torch.tensor(v)) for v in terms.values()), terms
    assert "attention" in terms and recipe.sample(batch["lr"]).dtype == torch.float32


def test_no_adversarial_term_means_no_discriminator_at_all():
    torch.manual_seed(0)
    cfg = load_config(overrides=[TINY, "options.iterations=[2]", "options.perceptual=false",
                                 "losses.adversarial=[0.0, 0.0, 0.0]"])  # fmt: skip
    recipe = ProgressiveRecipe(cfg, Context(torch.device("cpu")))
    assert recipe.d is None and list(recipe.models()) == ["generator"]
    assert list(recipe.optimizers()) == ["generator"]
    data = Faces(2)
    batch = {k: torch.stack([data[i][k] for i in range(2)]) for k in ("hr", "x64", "x32", "lr")}
    terms = recipe.train_step(batch, 0)
    assert sorted(terms) == ["g_total", "pixel"]


def test_cosine_learning_rate_over_the_last_step():
    from progface.train.recipes.progressive import learning_rate

    opts = load_config(overrides=["options.iterations=[10, 10, 20]", "options.lr_decay=cosine",
                                  "options.lr_min=1e-5"]).options  # fmt: skip
    assert learning_rate(opts, 0) == 1e-3 and learning_rate(opts, 20) == 1e-3  # steps 1-2
    assert learning_rate(opts, 30) == pytest.approx(0.5 * (1e-3 + 1e-5))  # half-way: cos = 0
    assert learning_rate(opts, 40) == pytest.approx(1e-5) and learning_rate(opts, 99) == 1e-5
    assert learning_rate(ProgressiveOptions(), 123_456) == 1e-3  # constant by default
    with pytest.raises(ValueError, match="lr_decay"):
        ProgressiveRecipe(load_config(overrides=[TINY, "options.lr_decay=step"]),
                          Context(torch.device("cpu")), heatmap_source=TinySource(68))  # fmt: skip


def test_attention_from_labelled_landmarks():
    from progface.landmarks.heatmaps import render_heatmaps
    from progface.losses.attention import attention_loss, attention_map

    torch.manual_seed(0)
    cfg = load_config(overrides=[TINY, "options.iterations=[1, 1]", "options.perceptual=false",
                                 "losses.adversarial=[0.0, 0.0, 0.0]",
                                 "losses.heatmap=[0.0, 0.0, 0.0]",
                                 "options.attention_source=landmarks"])  # fmt: skip
    source = TinySource(68)
    calls = []
    source.register_forward_hook(lambda *a: calls.append(1))
    recipe = ProgressiveRecipe(cfg, Context(torch.device("cpu")), heatmap_source=source)
    data = Faces(2)
    batch = {k: torch.stack([data[i][k] for i in range(2)]) for k in ("hr", "x64", "x32", "lr")}
    batch["landmarks"] = 20 + 80 * torch.rand(2, 68, 2)  # 128-px coordinates
    recipe.train_step(batch, 0)
    with torch.no_grad():  # what the step-2 term must be: Gaussians at the points, at 64 px
        fake = recipe.g(batch["lr"] * 2 - 1, 2, 0.0)
    points = (batch["landmarks"] + 0.5) * 0.5 - 0.5  # 128 -> 64 px pixel centres
    att = attention_map(render_heatmaps(points, 64, sigma=1.5))
    want = attention_loss(fake, batch["x64"] * 2 - 1, att)
    terms = recipe.train_step(batch, 1)
    assert terms["attention"] == pytest.approx(float(want), rel=1e-5)
    assert calls == []  # the heatmap source is not run for labelled attention without heatmaps
    del batch["landmarks"]
    with pytest.raises(ValueError, match="data.landmarks = true"):
        recipe.train_step(batch, 1)


def test_warm_start_from_a_generator_file(tmp_path):
    """options.init_generator loads a (float16) generator file before training; a file of
    another width is a one-line error naming it."""
    from progface.weights import WeightsError, save_safetensors

    torch.manual_seed(0)
    source = ProgressiveRecipe(load_config(overrides=[TINY]), Context(torch.device("cpu")),
                               heatmap_source=TinySource(68), perceptual=tiny_perceptual())  # fmt: skip
    half = {k: v.half() if v.is_floating_point() else v for k, v in source.g.state_dict().items()}
    path = save_safetensors(
        half, tmp_path / "g.safetensors", {"architecture": "progressive-generator"}
    )
    cfg = load_config(overrides=[TINY, f"options.init_generator={json.dumps(str(path))}",
                                 "options.perceptual=false"])  # fmt: skip
    warm = ProgressiveRecipe(cfg, Context(torch.device("cpu")), heatmap_source=TinySource(68))
    for k, v in warm.g.state_dict().items():
        assert v.dtype == source.g.state_dict()[k].dtype
        assert torch.equal(v, half[k].to(v.dtype)), k
    wide = load_config(overrides=["options.channels=[32, 16, 16, 8]", "options.perceptual=false",
                                  f"options.init_generator={json.dumps(str(path))}"])  # fmt: skip
    with pytest.raises(WeightsError, match="g.safetensors"):
        ProgressiveRecipe(wide, Context(torch.device("cpu")), heatmap_source=TinySource(68))


class _MeanAbs(torch.nn.Module):
    """A plugin-style loss: [0, 1] images (the LossSpec default), ``loss(sr, hr, batch)``."""

    def forward(self, sr, hr, batch):
        assert set(batch) >= {"lr", "hr", "x32", "x64"}
        return (sr - hr).abs().mean()


class _MeanAbsPlugin:
    from progface.hookspecs import hookimpl

    @hookimpl
    def register_losses(self, register):
        from progface.registry import LossSpec

        register(LossSpec("test-meanabs", lambda: _MeanAbs(), "mean |sr - hr| on [0, 1]"))


def test_total_is_the_weighted_sum_of_the_losses_table_at_each_step(register_plugin):
    """g_total = sum of weight[step] * term, every term recomputed by hand from copies of G and
    D before the step; the weights come from [losses] (lists per step, or one number for all
    steps: the plugin loss), and heatmap-source terms are left out at step 1 (32 px)."""
    import copy

    from progface.losses.attention import attention_loss, attention_map
    from progface.losses.heatmap import heatmap_loss
    from progface.losses.pixel import pixel_loss

    register_plugin(_MeanAbsPlugin(), "test-meanabs-plugin")
    weights = {"pixel": [1.0, 2.0, 3.0], "perceptual": [0.5, 0.25, 0.125],
               "adversarial": [0.1, 0.2, 0.3], "heatmap": [7.0, 5.0, 3.0],
               "attention": [0.0, 11.0, 13.0], "test-meanabs": 0.75}  # fmt: skip
    sets = [f"losses.{k}={json.dumps(v)}" for k, v in weights.items()]
    cfg = load_config(overrides=[TINY, "options.iterations=[1, 1, 1]", *sets])
    assert cfg.losses["test-meanabs"] == 0.75 and cfg.losses["heatmap"] == [7.0, 5.0, 3.0]
    torch.manual_seed(0)
    source = TinySource(68)
    recipe = ProgressiveRecipe(cfg, Context(torch.device("cpu")), heatmap_source=source,
                               perceptual=tiny_perceptual())  # fmt: skip
    data = Faces(2)
    batch = {k: torch.stack([data[i][k] for i in range(2)]) for k in ("hr", "x64", "x32", "lr")}
    for it, target_key in enumerate(("x32", "x64", "hr")):
        step = it + 1
        g, d = copy.deepcopy(recipe.g).train(), copy.deepcopy(recipe.d).train()
        with torch.no_grad():
            fake = g(batch["lr"] * 2 - 1, step, 0.0)  # fade 0.5 of one iteration: alpha 0
            target = batch[target_key] * 2 - 1
            real_hm, fake_hm = source(target * 0.5 + 0.5), source(fake * 0.5 + 0.5)
            want = {
                "pixel": pixel_loss(fake, target, "l1"),
                "perceptual": recipe.perceptual(fake, target),
                "adversarial": -d(fake, step, 0.0).mean(),
                "heatmap": heatmap_loss(fake_hm, real_hm),
                "attention": attention_loss(fake, target, attention_map(real_hm)),
                "test-meanabs": ((fake * 0.5 + 0.5) - (target * 0.5 + 0.5)).abs().mean(),
            }
        terms = recipe.train_step(batch, it)
        assert recipe.state()["step"] == step
        used = [k for k, w in weights.items()
                if (w if isinstance(w, float) else w[it]) and (step > 1 or k not in
                                                               ("heatmap", "attention"))]  # fmt: skip
        assert sorted(k for k in terms if not k.startswith("d_") and k != "g_total") == sorted(used)
        total = 0.0
        for k in used:
            assert terms[k] == pytest.approx(float(want[k]), rel=1e-4, abs=1e-7), (step, k)
            total += (weights[k] if isinstance(weights[k], float) else weights[k][it]) * terms[k]
        assert terms["g_total"] == pytest.approx(total, rel=1e-5), step
    assert recipe.export()[1]["losses"] == {k: v if isinstance(v, list) else [v] * 3
                                            for k, v in weights.items()}  # fmt: skip


def test_losses_table_errors():
    cpu = Context(torch.device("cpu"))
    with pytest.raises(KeyError, match=r"unknown loss 'pixl'; did you mean 'pixel'"):
        ProgressiveRecipe(load_config(overrides=[TINY, "losses.pixl=1.0"]), cpu)
    with pytest.raises(
        ValueError,
        match=r"losses.pixel: recipe 'progressive' has 3 steps: .* list of 3, got \[1.0, 2.0\]",
    ):
        ProgressiveRecipe(load_config(overrides=[TINY, "losses.pixel=[1.0, 2.0]"]), cpu)
    with pytest.raises(ValueError, match="losses.adversarial and losses.wgan name the same loss"):
        ProgressiveRecipe(load_config(overrides=[TINY, "losses.wgan=1.0"]), cpu)
    from progface.train.config import ConfigError

    with pytest.raises(ConfigError, match=r"options.weights.heatmap: moved to losses.heatmap"):
        load_config(overrides=["options.weights.heatmap=[0.0, 0.0, 0.0]"])
    with pytest.raises(ConfigError, match=r"losses.pixel: expected a weight"):
        load_config(overrides=['losses.pixel="ten"'])
    with pytest.raises(ConfigError, match=r"recipe 'vdsr' trains a fixed objective"):
        load_config(recipe="vdsr", overrides=["losses.pixel=1.0"])


def test_a_generator_without_the_step_alpha_interface_is_refused(register_plugin):
    from progface.hookspecs import hookimpl
    from progface.registry import GeneratorSpec

    class Plugin:
        @hookimpl
        def register_generators(self, register):
            register(GeneratorSpec("test-plain", lambda: torch.nn.Conv2d(3, 3, 1)))

    register_plugin(Plugin(), "test-plain-plugin")
    cfg = load_config(overrides=[TINY, "options.generator=test-plain"])
    with pytest.raises(ValueError, match=r"'test-plain' has no forward\(x, step, alpha\)"):
        ProgressiveRecipe(cfg, Context(torch.device("cpu")), heatmap_source=TinySource(68))
