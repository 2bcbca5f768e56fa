"""The FSRNet and FSRGAN training recipes (``progface train --recipe fsrnet`` / ``fsrgan``).

FSRNet: L = MSE(coarse, HR) + alpha MSE(SR, HR) + beta MSE(prior maps, target maps), alpha =
beta = 1, RMSprop at 2.5e-4, batch 14 (the paper's formulation as the cs-giung port trains it).
FSRGAN adds gamma_C x adversarial (BCE on the patch discriminator, 1e-3) and gamma_P x perceptual
(feature MSE of VGG16 up to relu5_3, 1e-1). Images are in [-1, 1] inside the recipe; the input is
the LR face bicubic-upsampled to 128 px.

Prior targets come from a heatmap source at 64 x 64 (any object with ``num_landmarks`` and
``__call__(images [B,3,H,W] in [0,1]) -> [B,N,h,w]``, or a registered name). The default
``landmarks`` source renders the training folder's ``landmarks68.csv``. No parsing maps exist
for the face data, so the prior is landmark heatmaps only (``num_parsing = 0``).

Faithful re-implementations, so the objectives are fixed: the recipes take no ``[losses]``
table. To train the FSRNet network with other losses, use ``--recipe sr --generator fsrnet``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from progface.models.fsrnet import FSRGANDiscriminator, FSRNet
from progface.train.config import bounded
from progface.train.recipes.base import Recipe

__all__ = ["FSRGANOptions", "FSRNetOptions", "FSRNetRecipe", "prior_targets"]


@dataclass
class FSRNetOptions:
    """``[options]`` of the fsrnet recipe."""

    iterations: int = bounded(100_000, min=1)
    lr: float = 2.5e-4
    sr_weight: float = 1.0  # alpha
    prior_weight: float = 1.0  # beta
    heatmap_source: str = "landmarks"  # registered source of the prior targets (or an object)
    heatmap_points: str = ""  # landmarks source: CSV or folder ("" = data.train)
    num_parsing: int = bounded(
        0, min=0
    )  # parsing-map channels (needs parsing targets; none exist here)
    adversarial_weight: float = 0.0  # gamma_C (FSRGAN: 1e-3)
    perceptual_weight: float = 0.0  # gamma_P (FSRGAN: 1e-1)
    perceptual_layers: list[str] = field(default_factory=lambda: ["relu5_3"])
    perceptual_weights: str = ""  # vgg16-397923af.pth path; "" = cache/download; "random"
    perceptual_imagenet_norm: bool = True  # torchvision VGG16 expects ImageNet mean/std


@dataclass
class FSRGANOptions(FSRNetOptions):
    """``[options]`` of the fsrgan recipe: FSRNet's plus the adversarial and perceptual terms."""

    adversarial_weight: float = 1e-3
    perceptual_weight: float = 1e-1


def _accepts_names(source: Any) -> bool:
    try:
        return "names" in inspect.signature(source).parameters
    except (TypeError, ValueError):
        return False


def prior_targets(
    source: Any, hr: torch.Tensor, size: int, names: list[str] | None = None
) -> torch.Tensor:
    """Landmark heatmaps of HR faces ``[B,3,H,W]`` in [0, 1] at ``size`` x ``size``.

    A source that renders stored coordinates (``landmarks``) gets the image ``names``.
    """
    with torch.no_grad():
        maps = (
            source(hr, names=names) if names is not None and _accepts_names(source) else source(hr)
        )
        if maps.shape[-1] != size or maps.shape[-2] != size:
            maps = F.interpolate(maps.float(), size=(size, size), mode="bilinear", antialias=True)
    return maps.float()


def build_heatmap_source(opts: FSRNetOptions, data_train: str, device: torch.device) -> Any:
    """The registered source ``opts.heatmap_source`` (``landmarks`` reads its coordinates)."""
    from progface import plugins

    spec = plugins.get("heatmap_sources", opts.heatmap_source)
    if spec.name == "landmarks":
        source = spec.build(points=opts.heatmap_points or data_train)
    else:
        source = spec.build()
    return source.to(device) if isinstance(source, torch.nn.Module) else source


class FSRNetRecipe(Recipe):
    """FSRNet (and with adversarial/perceptual weights, FSRGAN) for the generic loop."""

    def __init__(self, cfg, ctx, *, method: str = "fsrnet", heatmap_source: Any = None,
                 perceptual: Any = None) -> None:  # fmt: skip
        opt = cfg.options
        if opt.num_parsing:
            raise ValueError(
                "options.num_parsing > 0 needs parsing-map targets, which no dataset provides yet"
            )
        self.cfg, self.ctx, self.opt, self.method = cfg, ctx, opt, method
        self.source = heatmap_source or build_heatmap_source(opt, cfg.data.train, ctx.device)
        self.source_name = (
            opt.heatmap_source if heatmap_source is None else type(heatmap_source).__name__
        )
        self.net = ctx.prepare(
            FSRNet(num_landmarks=self.source.num_landmarks, num_parsing=opt.num_parsing)
        )
        self.optimizer = torch.optim.RMSprop(self.net.parameters(), lr=opt.lr)
        self.discriminator = self.opt_d = self.perceptual = None
        if opt.adversarial_weight:
            self.discriminator = ctx.prepare(FSRGANDiscriminator())
            self.opt_d = torch.optim.RMSprop(self.discriminator.parameters(), lr=opt.lr)
        if opt.perceptual_weight:
            if perceptual is None:
                from progface.losses.perceptual import PerceptualLoss

                perceptual = PerceptualLoss(
                    layers=tuple(opt.perceptual_layers),
                    weights=opt.perceptual_weights or None,
                    input_range=(-1.0, 1.0),
                    imagenet_norm=opt.perceptual_imagenet_norm,
                )
            self.perceptual = perceptual.to(ctx.device)
        self.total_iterations = opt.iterations
        self.iteration = 0

    def models(self) -> dict[str, torch.nn.Module]:
        nets = {"generator": self.net}
        if self.discriminator is not None:
            nets["discriminator"] = self.discriminator
        return nets

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {"generator": self.optimizer}
        if self.opt_d is not None:
            opts["discriminator"] = self.opt_d
        return opts

    def train_step(self, batch: dict[str, Any], iteration: int) -> dict[str, float]:
        self.iteration = iteration + 1
        opt = self.opt
        self.net.train()
        hr = batch["hr"] * 2 - 1
        prior_size = self.net.config.size // 2
        target_maps = prior_targets(self.source, batch["hr"], prior_size, batch.get("name"))
        with self.ctx.autocast():
            out = self.net(self.net.prepare(batch["lr"]))
        coarse, sr, priors = out.coarse.float(), out.sr.float(), out.priors.float()
        terms = {
            "coarse": F.mse_loss(coarse, hr),
            "sr": F.mse_loss(sr, hr),
            "prior": F.mse_loss(priors, target_maps),
        }
        total = terms["coarse"] + opt.sr_weight * terms["sr"] + opt.prior_weight * terms["prior"]
        if self.perceptual is not None:
            terms["perceptual"] = self.perceptual(sr, hr)
            total = total + opt.perceptual_weight * terms["perceptual"]
        if self.discriminator is not None:
            logits = self.discriminator(sr)
            terms["adversarial"] = F.binary_cross_entropy_with_logits(
                logits.float(), torch.ones_like(logits.float())
            )
            total = total + opt.adversarial_weight * terms["adversarial"]
        self.ctx.step(self.optimizer, total, terms)
        result = {k: float(v.detach()) for k, v in terms.items()}
        if self.discriminator is not None:
            result |= self._discriminator_step(hr, sr.detach())
        return result

    def _discriminator_step(self, hr: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
        self.discriminator.train()
        with self.ctx.autocast():
            real_logits = self.discriminator(hr).float()
            fake_logits = self.discriminator(fake).float()
        d_real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        d_fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        self.ctx.step(self.opt_d, d_real + d_fake, {"d_real": d_real, "d_fake": d_fake})
        return {"d_real": float(d_real.detach()), "d_fake": float(d_fake.detach())}

    @torch.no_grad()
    def sample(self, lr: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        return self.net.super_resolve(lr)

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The generator weights ``progface bench --weights fsrnet=...`` (or fsrgan) loads."""
        facts = {**self.net.config_dict(), "method": self.method, "recipe": self.method,
                 "iterations": self.iteration, "training_data": self.cfg.data.train,
                 "heatmap_source": self.source_name}  # fmt: skip
        return self.net.state_dict(), facts
