"""The paper's recipe: progressive G and D, five losses, one D update per G update.

Defaults follow the authors' training code (the only public source of the weights and the
schedule): steps of 50k/50k/100k iterations, alpha = min(1, k / 25k) within each step, L1 pixel
loss, Adam (0, 0.99) at 1e-3, and the step-dependent loss weights below. The ``paper`` preset
follows the paper's text where it differs (MSE pixel loss, alpha linear over the whole step).
Presets ``table2-*`` are the rows of the paper's ablation (Table 2).

Images are in [-1, 1] inside the recipe (the generator's range); the loop hands it [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from progface.losses.adversarial import wgan_g_loss, wgan_gp_d_loss
from progface.losses.attention import attention_loss, attention_map
from progface.losses.heatmap import HeatmapLoss, heatmap_loss, heatmaps_of
from progface.losses.perceptual import AUTHORS_LAYERS, PerceptualLoss
from progface.losses.pixel import PIXEL_KINDS, pixel_loss
from progface.models.progressive import (
    ProgressiveConfig,
    ProgressiveDiscriminator,
    ProgressiveGenerator,
)
from progface.train.context import Context
from progface.train.recipes.base import Recipe
from progface.weights import WeightsError

TARGETS = {1: "x32", 2: "x64", 3: "hr"}  # the target image of each step


@dataclass
class LossWeights:
    """Weight of each term at steps 1, 2, 3 (the authors' code; the paper gives none)."""

    pixel: list[float] = field(default_factory=lambda: [10.0, 10.0, 10.0])
    perceptual: list[float] = field(default_factory=lambda: [1e-2, 1e-2, 1e-3])
    adversarial: list[float] = field(default_factory=lambda: [1.0, 1.0, 0.1])
    heatmap: list[float] = field(default_factory=lambda: [0.0, 50.0, 50.0])
    attention: list[float] = field(default_factory=lambda: [0.0, 500.0, 50.0])


@dataclass
class ProgressiveOptions:
    """``[options]`` of the ``progressive`` recipe."""

    iterations: list[int] = field(default_factory=lambda: [50_000, 50_000, 100_000])
    # Fraction of each step over which alpha rises 0 -> 1 (code: 25k of 50k, 50k, 100k).
    fade: list[float] = field(default_factory=lambda: [0.0, 0.5, 0.25])
    progressive: bool = True  # False: every iteration at the last step with alpha 1
    pixel_loss: str = "l1"  # l1 (code) or mse (paper)
    weights: LossWeights = field(default_factory=LossWeights)
    perceptual: bool = True  # False: no VGG16 (e.g. when its weights are not available)
    perceptual_layers: list[str] = field(default_factory=lambda: list(AUTHORS_LAYERS))
    perceptual_weights: str = ""  # vgg16-397923af.pth path; "" = cache/download; "random"
    heatmap_source: str = "fan-distilled"  # registered heatmap source (or pass an object)
    heatmap_source_options: dict = field(default_factory=dict)  # e.g. {work_size = 64}
    # Where the attention maps M* come from: "" = the heatmap source on the target (the paper);
    # "landmarks" = the training faces' labelled landmarks (data.landmarks = true), rendered
    # as Gaussians at the target size: exact where the source is still weak, and free.
    attention_source: str = ""
    # warm start: a generator file (e.g. the shipped ours weights) loaded before the first
    # iteration; "" = random initialisation. Not used on --resume (the checkpoint wins).
    init_generator: str = ""
    lr: float = 1e-3
    # "constant" (the authors' code) or "cosine": lr falls to lr_min over the last step
    lr_decay: str = "constant"
    lr_min: float = 1e-5
    betas: list[float] = field(default_factory=lambda: [0.0, 0.99])
    gp_weight: float = 10.0
    drift: float = 0.001
    fresh_fake: bool = True  # D sees a new G output after G's step (the authors' order)
    channels: list[int] = field(default_factory=lambda: [512, 256, 128, 64])  # tests only


_NO_LANDMARKS = {"weights": {"heatmap": [0.0, 0.0, 0.0], "attention": [0.0, 0.0, 0.0]}}
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"options": {"pixel_loss": "mse", "fade": [0.0, 1.0, 1.0]}},
    "table2-pixel-wgan": {"options": {"perceptual": False, **_NO_LANDMARKS}},
    "table2-perceptual": {"options": _NO_LANDMARKS},
    "table2-heatmap": {"options": {"weights": {"attention": [0.0, 0.0, 0.0]}}},
    "table2-no-progressive": {"options": {"progressive": False}},
    "table2-full": {},
}


ATTENTION_SOURCES = ("", "landmarks")
LR_DECAYS = ("constant", "cosine")


def learning_rate(opts: ProgressiveOptions, iteration: int) -> float:
    """The learning rate of 0-based ``iteration``: constant, or cosine from ``lr`` to
    ``lr_min`` over the last step (the earlier steps keep ``lr``)."""
    if opts.lr_decay == "constant":
        return opts.lr
    start = sum(opts.iterations[:-1]) if opts.progressive else 0
    length = opts.iterations[-1] if opts.progressive else sum(opts.iterations)
    k = min(max(iteration - start, 0), length)
    return opts.lr_min + 0.5 * (opts.lr - opts.lr_min) * (1 + math.cos(math.pi * k / length))


def schedule(opts: ProgressiveOptions, iteration: int) -> tuple[int, float]:
    """(step, alpha) of 0-based ``iteration``; alpha is -1 (no blending) where none applies."""
    if not opts.progressive:
        return 3, -1.0
    start = 0
    for index, length in enumerate(opts.iterations):
        if iteration < start + length or index == len(opts.iterations) - 1:
            step, k = index + 1, iteration - start
            break
        start += length
    ramp = opts.fade[step - 1] * opts.iterations[step - 1]
    if step == 1 or ramp <= 0:
        return step, -1.0
    return step, min(1.0, k / ramp)


def _validate(opts: ProgressiveOptions) -> None:
    if not 1 <= len(opts.iterations) <= 3 or any(n <= 0 for n in opts.iterations):
        raise ValueError(f"options.iterations needs 1-3 positive counts, got {opts.iterations}")
    if len(opts.fade) != 3 or any(not 0 <= f <= 1 for f in opts.fade):
        raise ValueError(f"options.fade needs 3 fractions in [0, 1], got {opts.fade}")
    if opts.pixel_loss not in PIXEL_KINDS:
        raise ValueError(f"options.pixel_loss must be one of {PIXEL_KINDS}")
    for name, values in vars(opts.weights).items():
        if len(values) != 3:
            raise ValueError(f"options.weights.{name} needs 3 values (steps 1-3), got {values}")
    if opts.attention_source not in ATTENTION_SOURCES:
        raise ValueError(f"options.attention_source must be one of {ATTENTION_SOURCES}")
    if opts.lr_decay not in LR_DECAYS:
        raise ValueError(f"options.lr_decay must be one of {LR_DECAYS}")
    if not 0 <= opts.lr_min <= opts.lr:
        raise ValueError(f"options.lr_min must be in [0, options.lr], got {opts.lr_min}")
    if len(opts.channels) != 4 or len(opts.betas) != 2:
        raise ValueError("options.channels needs 4 widths and options.betas 2 values")


class ProgressiveRecipe(Recipe):
    """Builds G, D, their Adam optimisers and the losses; one iteration = G step + D step."""

    def __init__(self, cfg, ctx: Context, *, heatmap_source: Any = None, perceptual: Any = None):
        opts: ProgressiveOptions = cfg.options
        _validate(opts)
        self.opts, self.ctx = opts, ctx
        self.preset = cfg.preset
        arch = ProgressiveConfig(channels=tuple(opts.channels))
        steps = self._steps_trained()
        w = opts.weights
        # D exists only when some trained step uses the adversarial term: no memory, no
        # compute and no checkpoint space for a critic that is never used
        train_d = any(w.adversarial[s - 1] for s in steps)
        betas = tuple(opts.betas)
        generator = ProgressiveGenerator(config=arch)
        if opts.init_generator:
            from progface.weights import load_safetensors, load_state_checked

            tensors, _ = load_safetensors(opts.init_generator)
            load_state_checked(generator, tensors, opts.init_generator)  # fp16 files upcast
        self.g = ctx.prepare(generator)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=opts.lr, betas=betas)
        self.d = self.opt_d = None
        if train_d:
            self.d = ctx.prepare(ProgressiveDiscriminator(config=arch))
            self.opt_d = torch.optim.Adam(self.d.parameters(), lr=opts.lr, betas=betas)
        self.total_iterations = sum(opts.iterations)

        self.perceptual = None
        if opts.perceptual and any(w.perceptual[s - 1] for s in steps):
            if perceptual is None:
                try:
                    perceptual = PerceptualLoss(
                        opts.perceptual_layers, weights=opts.perceptual_weights or None
                    )
                except WeightsError as err:
                    raise WeightsError(
                        f"{err}; or pass --perceptual-weights PATH, or train without the "
                        "perceptual term (--set options.perceptual=false)"
                    ) from err
            self.perceptual = perceptual.to(ctx.device)
        self.heatmaps = None
        self.heatmap_source_name = None
        if any(w.heatmap[s - 1] or w.attention[s - 1] for s in steps if s > 1):
            if heatmap_source is None:
                from progface import plugins

                spec = plugins.get("heatmap_sources", opts.heatmap_source)
                heatmap_source = spec.build(**opts.heatmap_source_options)
                self.heatmap_source_name = opts.heatmap_source
            else:
                self.heatmap_source_name = type(heatmap_source).__name__
            if isinstance(heatmap_source, torch.nn.Module):
                heatmap_source = heatmap_source.to(ctx.device)
            self.heatmaps = HeatmapLoss(heatmap_source)  # holds the frozen source
        if opts.attention_source == "landmarks":
            from progface.landmarks.sources import LandmarkHeatmaps

            self.labelled = LandmarkHeatmaps()
        self.step, self.alpha = schedule(opts, 0)

    def _steps_trained(self) -> list[int]:
        return [3] if not self.opts.progressive else list(range(1, len(self.opts.iterations) + 1))

    # --- the Recipe protocol ---------------------------------------------------------------

    def models(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.g, **({"discriminator": self.d} if self.d else {})}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.opt_g, **({"discriminator": self.opt_d} if self.opt_d else {})}

    def state(self) -> dict[str, Any]:
        # alpha < 0 means the plain path, which is what alpha 1 gives
        return {"step": self.step, "alpha": 1.0 if self.alpha < 0 else round(self.alpha, 6)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.alpha = float(state["alpha"])

    @torch.no_grad()
    def sample(self, lr: torch.Tensor) -> torch.Tensor:
        self.g.eval()
        with self.ctx.autocast():
            out = self.g(lr * 2 - 1, self.step, self.alpha)
        return out.float() * 0.5 + 0.5

    def train_step(self, batch: dict[str, Any], iteration: int) -> dict[str, float]:
        opts, ctx = self.opts, self.ctx
        step, alpha = schedule(opts, iteration)
        self.step, self.alpha = step, alpha
        i = step - 1
        w = opts.weights
        lr = batch["lr"] * 2 - 1
        target = batch[TARGETS[step]] * 2 - 1
        for group in self.opt_g.param_groups:
            group["lr"] = learning_rate(opts, iteration)
        self.g.train()
        if self.d is not None:  # frozen for the generator update: its gradients are not needed
            self.d.train()
            self.d.requires_grad_(False)

        # generator update
        with ctx.autocast():
            fake = self.g(lr, step, alpha)
            terms: dict[str, torch.Tensor] = {"pixel": pixel_loss(fake, target, opts.pixel_loss)}
            total = w.pixel[i] * terms["pixel"]
            if self.perceptual is not None and w.perceptual[i]:
                terms["perceptual"] = self.perceptual(fake, target)
                total = total + w.perceptual[i] * terms["perceptual"]
            if w.adversarial[i]:
                terms["adversarial"] = wgan_g_loss(self.d(fake, step, alpha))
                total = total + w.adversarial[i] * terms["adversarial"]
            if self.heatmaps is not None and step > 1 and (w.heatmap[i] or w.attention[i]):
                labelled = opts.attention_source == "landmarks"
                real_hm = None  # the source's heatmaps of the target, shared by both losses
                if w.heatmap[i] or not labelled:
                    real_hm = self.heatmaps.real_heatmaps(target)
                if w.heatmap[i]:
                    fake_hm = heatmaps_of(self.heatmaps.source, fake, self.heatmaps.input_range)
                    terms["heatmap"] = heatmap_loss(fake_hm.float(), real_hm.float())
                    total = total + w.heatmap[i] * terms["heatmap"]
                if w.attention[i]:
                    att_hm = self._labelled_heatmaps(batch, target) if labelled else real_hm
                    att = attention_map(att_hm.float())
                    terms["attention"] = attention_loss(fake.float(), target, att)
                    total = total + w.attention[i] * terms["attention"]
        ctx.step(self.opt_g, total, terms)

        out = {k: float(v.detach()) for k, v in terms.items()}
        out["g_total"] = float(total.detach())
        if self.d is None:
            return out
        self.d.requires_grad_(True)

        # discriminator update
        if opts.fresh_fake:
            with torch.no_grad(), ctx.autocast():
                fake = self.g(lr, step, alpha)
        with ctx.autocast():
            d_total, d_terms = wgan_gp_d_loss(
                lambda x: self.d(x, step, alpha).float(), target, fake.detach(),
                opts.gp_weight, opts.drift,
            )  # fmt: skip
        ctx.step(self.opt_d, d_total, d_terms)
        out.update({f"d_{k}": float(v.detach()) for k, v in d_terms.items()})
        out["d_total"] = float(d_total.detach())
        return out

    def _labelled_heatmaps(self, batch: dict[str, Any], target: torch.Tensor) -> torch.Tensor:
        """Gaussians at the batch's labelled landmarks (128-px coordinates), at the target size."""
        from progface.landmarks.heatmaps import rescale_points

        points = batch.get("landmarks")
        if points is None:
            raise ValueError(
                "options.attention_source = 'landmarks' needs labelled training faces: "
                "set data.landmarks = true (a landmarks68.csv or .pts files beside the images)"
            )
        size = target.shape[-1]
        points = rescale_points(points.float(), batch["hr"].shape[-1], size)
        return self.labelled.heatmaps_from_points(points, size)

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The generator's weights and the facts ``ours`` and the reader need."""
        step, alpha = self.state()["step"], self.state()["alpha"]
        return dict(self.g.state_dict()), {
            "architecture": "progressive-generator",
            "channels": list(self.opts.channels),
            "step": step,
            "alpha": alpha,
            "input_range": [-1, 1],
            "output": "0.5 * y + 0.5 maps to [0, 1]",
            "preset": self.preset,
            "pixel_loss": self.opts.pixel_loss,
            "perceptual": (
                "off"
                if self.perceptual is None
                else f"vgg16 {getattr(self.perceptual, 'weights_source', 'custom')}"
            ),  # fmt: skip
            "heatmap_source": self.heatmap_source_name or "none",
            "attention_source": self.opts.attention_source or self.heatmap_source_name or "none",
        }


def build(cfg, ctx: Context, **objects: Any) -> ProgressiveRecipe:
    return ProgressiveRecipe(cfg, ctx, **objects)
