"""The generic supervised recipe ``sr``: any registered generator, any registered losses.

``progface train --recipe sr --generator NAME`` trains the registered generator ``NAME``
(``options.generator``, built with ``options.generator_options``) to map 16 px LR faces to
their 128 px HR faces, with the ``[losses]`` table (default ``pixel = 1``: L1 in the
generator-range units of the paper's losses, twice the L1 of [0, 1] images) and Adam. The
generator contract (``progface.registry.GeneratorSpec``): ``super_resolve(lr)``, or
``forward(lr)`` when the module has no ``super_resolve``, maps ``[B,3,16,16]`` in [0, 1] to
``[B,3,128,128]`` in [0, 1]. A loss that needs the heatmap source gets ``options.heatmap_source``
(built only then); no critic is trained, so a loss that needs one is refused.

``export()`` writes the generator's weights with metadata naming it (``generator``,
``generator_options``, ``architecture``), from which ``bench`` and ``upscale`` derive a method:
``progface bench --methods NAME --weights NAME=RUN/weights.safetensors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from progface.losses.heatmap import resolve_source
from progface.losses.table import LossBatch, build_terms, parse_table, weighted_sum
from progface.train.config import bounded
from progface.train.recipes.base import Recipe
from progface.train.schedule import cosine, set_lr

__all__ = ["DEFAULT_LOSSES", "SROptions", "SRRecipe", "build", "recipe_spec", "super_resolver"]

DEFAULT_LOSSES: dict[str, Any] = {"pixel": 1.0}
IMAGE_RANGE = (0.0, 1.0)
LR_DECAYS = ("constant", "cosine")


@dataclass
class SROptions:
    """``[options]`` of the ``sr`` recipe."""

    generator: str = ""  # a registered generator (--generator NAME); required
    generator_options: dict = field(default_factory=dict)  # its build options (JSON values)
    iterations: int = bounded(10_000, min=1)
    lr: float = bounded(1e-4, min=0)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    lr_decay: str = bounded("constant", choices=LR_DECAYS)  # cosine: lr -> lr_min at the end
    lr_min: float = bounded(1e-6, min=0)
    heatmap_source: str = "fan-distilled"  # for losses that need one (heatmap, attention)
    heatmap_source_options: dict = field(default_factory=dict)
    init_generator: str = ""  # warm start from a weight file of this generator ("" = none)


def super_resolver(net: nn.Module):
    """The callable of the generator contract: ``net.super_resolve`` or ``net`` itself."""
    run = getattr(net, "super_resolve", None)
    return run if callable(run) else net


class SRRecipe(Recipe):
    """One generator, one Adam optimiser, the weighted ``[losses]`` of SR and HR faces."""

    def __init__(self, cfg, ctx, *, heatmap_source: Any = None, losses: dict | None = None):
        from progface import plugins

        opts: SROptions = cfg.options
        if not opts.generator:
            known = ", ".join(plugins.registries()["generators"].names())
            raise ValueError(
                f"recipe 'sr' needs a generator: --generator NAME (registered: {known})"
            )
        if len(opts.betas) != 2:
            raise ValueError(f"options.betas needs 2 values, got {opts.betas}")
        self.cfg, self.ctx, self.opts = cfg, ctx, opts
        self.spec = plugins.get("generators", opts.generator)
        self.terms = parse_table(cfg.losses, 1, cfg.recipe)
        net = self.spec.build(**opts.generator_options)
        if not isinstance(net, nn.Module):
            raise TypeError(
                f"generator {opts.generator!r} built {type(net).__name__}, not a Module"
            )
        if opts.init_generator:
            from progface.weights import load_safetensors, load_state_checked

            tensors, _ = load_safetensors(opts.init_generator)
            load_state_checked(net, tensors, opts.init_generator)
        self.net = ctx.prepare(net)
        self.run = super_resolver(self.net)
        self.optimizer = torch.optim.Adam(
            self.net.parameters(), lr=opts.lr, betas=tuple(opts.betas)
        )
        self.total_iterations = opts.iterations
        self.iteration = 0
        self.source = None
        self.heatmap_source_name = None

        def make_source():
            self.source, self.heatmap_source_name = resolve_source(
                heatmap_source, opts.heatmap_source, opts.heatmap_source_options, ctx.device
            )
            return self.source

        build_terms(self.terms, recipe=cfg.recipe, objects={"source": make_source},
                    options=cfg.loss_options, prebuilt=losses, device=ctx.device)  # fmt: skip
        if not any(t.module is not None for t in self.terms):
            raise ValueError("[losses]: no term has a nonzero weight")

    def models(self) -> dict[str, nn.Module]:
        return {"generator": self.net}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.optimizer}

    def learning_rate(self, iteration: int) -> float:
        o = self.opts
        if o.lr_decay == "constant":
            return o.lr
        k = min(iteration, o.iterations)
        return cosine(o.lr, o.lr_min, k, o.iterations)

    def train_step(self, batch: dict[str, Any], iteration: int) -> dict[str, float]:
        self.iteration = iteration + 1
        lr_now = self.learning_rate(iteration)
        set_lr(self.optimizer, lr_now)
        self.net.train()
        hr = batch["hr"]
        lazy = {}
        if self.source is not None:  # the source's heatmaps of the target, shared by the terms
            lazy["heatmaps"] = lambda: _no_grad_heatmaps(self.source, hr)
        with self.ctx.autocast():
            sr = self.run(batch["lr"])
            if tuple(sr.shape) != tuple(hr.shape):
                raise ValueError(
                    f"generator {self.opts.generator!r} returned shape {tuple(sr.shape)} for LR "
                    f"{tuple(batch['lr'].shape)}; the sr recipe needs {tuple(hr.shape)} "
                    "([B,3,16,16] in [0, 1] -> [B,3,128,128] in [0, 1])"
                )
            total, terms = weighted_sum(self.terms, 1, sr.float(), hr, LossBatch(batch, lazy),
                                        IMAGE_RANGE)  # fmt: skip
        self.ctx.step(self.optimizer, total, terms)
        out = {k: float(v.detach()) for k, v in terms.items()}
        return {**out, "total": float(total.detach()), "lr": lr_now}

    @torch.no_grad()
    def sample(self, lr: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        with self.ctx.autocast():
            return self.run(lr).float()

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        pass

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The generator's weights; the metadata names it, so bench and upscale can run it."""
        config = getattr(self.net, "config_dict", None)
        facts = dict(config()) if callable(config) else {}
        facts.setdefault("architecture", self.spec.name)
        facts.update({
            "generator": self.spec.name,
            "generator_options": dict(self.opts.generator_options),
            "interface": "super_resolve",
            "input_range": [0, 1],
            "recipe": "sr",
            "iterations": self.iteration,
            "losses": {t.key: t.weights[0] for t in self.terms if t.module is not None},
            "heatmap_source": self.heatmap_source_name or "none",
            "training_data": self.cfg.data.train,
        })  # fmt: skip
        return dict(self.net.state_dict()), facts


def _no_grad_heatmaps(source, hr: torch.Tensor) -> torch.Tensor:
    from progface.losses.heatmap import heatmaps_of

    with torch.no_grad():
        return heatmaps_of(source, hr, IMAGE_RANGE)


def build(cfg, ctx, **objects: Any) -> SRRecipe:
    return SRRecipe(cfg, ctx, **objects)


def recipe_spec():
    """The ``RecipeSpec`` of ``sr`` (registered by a built-in plugin)."""
    from progface.registry import RecipeSpec

    return RecipeSpec(
        name="sr", build=build, options=SROptions, losses=DEFAULT_LOSSES,
        description="any registered generator (--generator NAME) with the [losses] table, Adam",
    )  # fmt: skip
