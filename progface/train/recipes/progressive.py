"""The paper's recipe: progressive G and D, five losses, one D update per G update.

Defaults follow the authors' training code (the only public source of the weights and the
schedule): steps of 50k/50k/100k iterations, alpha = min(1, k / 25k) within each step, L1 pixel
loss, Adam (0, 0.99) at 1e-3, and the step-dependent loss weights of :data:`DEFAULT_LOSSES`.
The ``paper`` preset follows the paper's text where it differs (MSE pixel loss, alpha linear
over the whole step). Presets ``table2-*`` are the rows of the paper's ablation (Table 2).

The generator's objective is the config's ``[losses]`` table: registered losses
(``progface.losses.table``) with one weight for every step or a list of 3 per-step weights;
the five terms of the paper are registered losses like any plugin's. The recipe provides the
heatmap source (``source``) and the discriminator at the current step and alpha (``critic``)
to the losses that need them; a loss that needs the heatmap source is not used at step 1
(32 px). The critic minimises the WGAN-GP loss with ``gp_weight`` and ``drift``.

Images are in [-1, 1] inside the recipe (the generator's range); the loop hands it [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from progface.losses.adversarial import wgan_gp_d_loss
from progface.losses.heatmap import heatmaps_of, resolve_source
from progface.losses.perceptual import AUTHORS_LAYERS
from progface.losses.pixel import PIXEL_KINDS
from progface.losses.table import LossBatch, Term, build_terms, parse_table, weighted_sum
from progface.models.progressive import (
    ProgressiveConfig,
    ProgressiveDiscriminator,
    ProgressiveGenerator,
)
from progface.train.context import Context
from progface.train.recipes.base import Recipe
from progface.train.schedule import cosine, set_lr
from progface.weights import WeightsError

TARGETS = {1: "x32", 2: "x64", 3: "hr"}  # the target image of each step
STEPS = 3
IMAGE_RANGE = (-1.0, 1.0)  # the generator's

# The default [losses] table: weight of each term at steps 1, 2, 3 (the authors' code; the
# paper gives none). Keys are registered loss names; "adversarial" is the WGAN generator term.
DEFAULT_LOSSES: dict[str, list[float]] = {
    "pixel": [10.0, 10.0, 10.0],
    "perceptual": [1e-2, 1e-2, 1e-3],
    "adversarial": [1.0, 1.0, 0.1],
    "heatmap": [0.0, 50.0, 50.0],
    "attention": [0.0, 500.0, 50.0],
}


@dataclass
class ProgressiveOptions:
    """``[options]`` of the ``progressive`` recipe (the loss weights are the ``[losses]``
    table)."""

    MOVED_KEYS: ClassVar[dict[str, str]] = {"weights": "losses"}  # options.weights.X -> losses.X

    iterations: list[int] = field(default_factory=lambda: [50_000, 50_000, 100_000])
    # Fraction of each step over which alpha rises 0 -> 1 (code: 25k of 50k, 50k, 100k).
    fade: list[float] = field(default_factory=lambda: [0.0, 0.5, 0.25])
    progressive: bool = True  # False: every iteration at the last step with alpha 1
    # a registered generator with forward(x, step, alpha) on [-1, 1] images
    generator: str = "progressive"
    generator_options: dict = field(default_factory=dict)  # its build options (JSON values)
    pixel_loss: str = "l1"  # l1 (code) or mse (paper): the pixel term's kind
    perceptual: bool = True  # False: no perceptual term, no VGG16 (e.g. without its weights)
    perceptual_layers: list[str] = field(default_factory=lambda: list(AUTHORS_LAYERS))
    perceptual_weights: str = ""  # vgg16-397923af.pth path; "" = cache/download; "random"
    heatmap_source: str = "fan-distilled"  # registered heatmap source (or pass an object)
    heatmap_source_options: dict = field(default_factory=dict)  # e.g. {work_size = 64}
    # Where the attention maps M* come from: "" = the heatmap source on the target (the paper);
    # "landmarks" = the training faces' labelled landmarks (data.landmarks = true), rendered
    # as Gaussians at the target size: exact where the source is still weak, and free (the
    # attention loss's landmarks option).
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
    # widths of D, and of G when its build takes `channels` (smaller ones are for tests)
    channels: list[int] = field(default_factory=lambda: [512, 256, 128, 64])


_NO_LANDMARKS = {"heatmap": [0.0, 0.0, 0.0], "attention": [0.0, 0.0, 0.0]}
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"options": {"pixel_loss": "mse", "fade": [0.0, 1.0, 1.0]}},
    "table2-pixel-wgan": {"options": {"perceptual": False}, "losses": _NO_LANDMARKS},
    "table2-perceptual": {"losses": _NO_LANDMARKS},
    "table2-heatmap": {"losses": {"attention": [0.0, 0.0, 0.0]}},
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
    return cosine(opts.lr, opts.lr_min, k, length)


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

    def __init__(
        self,
        cfg,
        ctx: Context,
        *,
        heatmap_source: Any = None,
        perceptual: Any = None,
        losses: dict[str, Any] | None = None,
    ):
        """``heatmap_source`` (an object, instead of ``options.heatmap_source``),
        ``perceptual`` (a ready module for the ``perceptual`` term) and ``losses`` (ready
        modules by loss name) are the library API's objects (``train(cfg, ...)``)."""
        opts: ProgressiveOptions = cfg.options
        _validate(opts)
        self.opts, self.ctx = opts, ctx
        self.preset = cfg.preset
        arch = ProgressiveConfig(channels=tuple(opts.channels))
        steps = self._steps_trained()
        self.terms = parse_table(cfg.losses, STEPS, cfg.recipe)
        if not opts.perceptual:  # the switch that needs no VGG16 weights
            self.terms = [t for t in self.terms if t.spec.name != "perceptual"]
        used = [t for t in self.terms if any(self._active(t, s) for s in steps)]
        for step in steps:
            if not any(self._active(t, step) for t in self.terms):
                raise ValueError(f"[losses]: no term has a nonzero weight at step {step}")
        # D exists only when some trained step uses a term that needs it: no memory, no
        # compute and no checkpoint space for a critic that is never used
        train_d = any("critic" in t.spec.needs for t in used)
        betas = tuple(opts.betas)
        generator, self.generator_options = self._build_generator(arch)
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

        self.heatmap_source_name = None
        self.source = None
        self.perceptual_source = "off"

        def make_source():
            self.source, self.heatmap_source_name = resolve_source(
                heatmap_source, opts.heatmap_source, opts.heatmap_source_options, ctx.device
            )
            return self.source

        prebuilt = {
            **(losses or {}),
            **({"perceptual": perceptual} if perceptual is not None else {}),
        }
        objects = {"source": make_source}
        if train_d:
            objects["critic"] = lambda: self._critic
        try:
            build_terms(
                self.terms, recipe=cfg.recipe, objects=objects, device=ctx.device,
                used=lambda term: any(term is u for u in used), defaults=self._loss_defaults(),
                options=cfg.loss_options, prebuilt=prebuilt,
            )  # fmt: skip
        except WeightsError as err:  # terms are built in order: the first unbuilt one failed
            failed = next(t for t in used if t.module is None)
            if failed.spec.name != "perceptual":
                raise
            raise WeightsError(
                f"{err}; or pass --perceptual-weights PATH, or train without the "
                "perceptual term (--set options.perceptual=false)"
            ) from err
        self.perceptual = next((t.module for t in used if t.spec.name == "perceptual"), None)
        if self.perceptual is not None:
            self.perceptual_source = f"vgg16 {getattr(self.perceptual, 'weights_source', 'custom')}"
        self.step, self.alpha = schedule(opts, 0)

    def _build_generator(self, arch: ProgressiveConfig) -> tuple[torch.nn.Module, dict]:
        """The registered ``options.generator``; its build gets ``channels`` when it takes them."""
        import inspect

        from progface import plugins

        opts = self.opts
        spec = plugins.get("generators", opts.generator)
        kwargs = dict(opts.generator_options)
        if "channels" in inspect.signature(spec.build).parameters:
            kwargs.setdefault("channels", list(arch.channels))
        generator = spec.build(**kwargs)
        try:
            inspect.signature(generator.forward).bind(None, 3, 1.0)
        except TypeError:
            raise ValueError(
                f"options.generator: generator {opts.generator!r} has no forward(x, step, alpha), "
                "the progressive recipe's interface; train it with --recipe sr"
            ) from None
        return generator, kwargs

    def _loss_defaults(self) -> dict[str, dict[str, Any]]:
        """Build options of the paper's terms from this recipe's ``[options]`` keys (by loss
        name; ``[loss_options]`` overrides them)."""
        opts = self.opts
        return {
            "pixel": {"kind": opts.pixel_loss},
            "perceptual": {"layers": opts.perceptual_layers,
                           "weights": opts.perceptual_weights or None},
            "attention": {"landmarks": opts.attention_source == "landmarks"},
            "wgan-gp": {"gp_weight": opts.gp_weight, "drift": opts.drift},
        }  # fmt: skip

    def _critic(self, x: torch.Tensor) -> torch.Tensor:
        """D at the current step and alpha (what the ``critic`` of a loss calls)."""
        return self.d(x, self.step, self.alpha)

    def _active(self, term: Term, step: int) -> bool:
        """The term is computed at ``step``: a nonzero weight, and not a heatmap-source term at
        step 1 (32 px)."""
        return bool(term.weight(step)) and (step > 1 or "source" not in term.spec.needs)

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
        lr = batch["lr"] * 2 - 1
        target = batch[TARGETS[step]] * 2 - 1
        set_lr(self.opt_g, learning_rate(opts, iteration))
        self.g.train()
        if self.d is not None:  # frozen for the generator update: its gradients are not needed
            self.d.train()
            self.d.requires_grad_(False)

        # generator update
        lazy = {}
        if self.source is not None:  # the source's heatmaps of the target, shared by the terms
            lazy["heatmaps"] = lambda: _no_grad(heatmaps_of, self.source, target, IMAGE_RANGE)
        seen = LossBatch(batch, lazy)
        with ctx.autocast():
            fake = self.g(lr, step, alpha)
            total, terms = weighted_sum(self.terms, step, fake, target, seen, IMAGE_RANGE,
                                        skip=lambda t: not self._active(t, step))  # fmt: skip
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

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The generator's weights and the facts ``ours`` and the reader need."""
        step, alpha = self.state()["step"], self.state()["alpha"]
        own = type(self.g) is ProgressiveGenerator
        return dict(self.g.state_dict()), {
            "architecture": "progressive-generator" if own else self.opts.generator,
            "generator": self.opts.generator,
            "generator_options": self.generator_options,
            "interface": "progressive",
            "channels": list(self.opts.channels),
            "step": step,
            "alpha": alpha,
            "input_range": [-1, 1],
            "output": "0.5 * y + 0.5 maps to [0, 1]",
            "preset": self.preset,
            "pixel_loss": self.opts.pixel_loss,
            "losses": {t.key: t.weights for t in self.terms if t.module is not None},
            "perceptual": self.perceptual_source,
            "heatmap_source": self.heatmap_source_name or "none",
            "attention_source": self.opts.attention_source or self.heatmap_source_name or "none",
        }


def _no_grad(fn, *args):
    with torch.no_grad():
        return fn(*args)


def build(cfg, ctx: Context, **objects: Any) -> ProgressiveRecipe:
    return ProgressiveRecipe(cfg, ctx, **objects)
