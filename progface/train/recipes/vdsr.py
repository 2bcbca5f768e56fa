"""The VDSR training recipe (``progface train --recipe vdsr``).

As in the VDSR paper: Euclidean loss on the HR image, SGD with momentum 0.9 and weight decay
1e-4, learning rate 0.1 divided by 10 at fixed intervals (the paper: every 20 of 80 epochs),
adjustable gradient clipping (each gradient element clamped to [-theta/lr, theta/lr]) and
random 41x41 training patches. The input is the paper's LR face (16 px) bicubic-upsampled to
128 px. What the paper does not fix for faces (iterations, theta) is an option.

A faithful re-implementation, so the objective is fixed: the recipe takes no ``[losses]`` table.
To train the VDSR network with other losses, use ``--recipe sr --generator vdsr``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from progface.models.vdsr import VDSR, clip_gradients_adjustable
from progface.train.config import bounded
from progface.train.recipes.base import Recipe
from progface.train.schedule import set_lr

__all__ = ["AdjustableClipSGD", "VDSROptions", "VDSRRecipe", "random_patches"]


@dataclass
class VDSROptions:
    """``[options]`` of the vdsr recipe."""

    iterations: int = bounded(80_000, min=1)
    in_chans: int = bounded(
        3, choices=(1, 3)
    )  # 3: RGB; 1: the paper's Y channel (Cb, Cr stay bicubic)
    lr: float = 0.1
    lr_step: int = 20_000  # multiply the learning rate by lr_decay every lr_step iterations
    lr_decay: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    clip_theta: float = 1e-5  # adjustable clipping: |gradient| <= clip_theta / lr (see docs)
    patch: int = bounded(41, min=0)  # side of the random training patches (0: whole 128 px faces)
    loss: str = bounded(
        "euclidean", choices=("euclidean", "mse")
    )  # "euclidean": 0.5 * squared error summed per face (Caffe); "mse"


class AdjustableClipSGD(torch.optim.SGD):
    """SGD whose ``step`` first clamps every gradient element to [-theta/lr, theta/lr] of its
    parameter group (VDSR's adjustable gradient clipping; ``theta`` lives in the group, so it
    is saved with the optimiser state)."""

    def __init__(self, params, *, theta: float, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        for group in self.param_groups:
            group.setdefault("theta", theta)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            clip_gradients_adjustable(group["params"], group["theta"], group["lr"])
        return super().step(closure)


def random_patches(
    x: torch.Tensor, y: torch.Tensor, size: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random ``size`` x ``size`` window of each pair ``x[i]``, ``y[i]``."""
    h, w = x.shape[-2:]
    if size <= 0 or size >= min(h, w):
        return x, y
    top = torch.randint(0, h - size + 1, (len(x),), generator=generator).tolist()
    left = torch.randint(0, w - size + 1, (len(x),), generator=generator).tolist()
    xs = [x[i, :, t : t + size, s : s + size] for i, (t, s) in enumerate(zip(top, left))]
    ys = [y[i, :, t : t + size, s : s + size] for i, (t, s) in enumerate(zip(top, left))]
    return torch.stack(xs), torch.stack(ys)


class VDSRRecipe(Recipe):
    """Models, optimiser and one training iteration of VDSR for the generic loop."""

    def __init__(self, cfg, ctx) -> None:
        opt = cfg.options
        if opt.loss not in ("euclidean", "mse"):
            raise ValueError(f"options.loss must be 'euclidean' or 'mse', got {opt.loss!r}")
        self.cfg, self.ctx, self.opt = cfg, ctx, opt
        self.net = ctx.prepare(VDSR(in_chans=opt.in_chans))
        self.optimizer = AdjustableClipSGD(
            self.net.parameters(), theta=opt.clip_theta, lr=opt.lr,
            momentum=opt.momentum, weight_decay=opt.weight_decay,
        )  # fmt: skip
        self.total_iterations = opt.iterations
        self.iteration = 0

    def models(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.net}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.optimizer}

    def learning_rate(self, iteration: int) -> float:
        return self.opt.lr * self.opt.lr_decay ** (iteration // max(self.opt.lr_step, 1))

    def train_step(self, batch: dict[str, Any], iteration: int) -> dict[str, float]:
        self.iteration = iteration + 1
        lr_now = self.learning_rate(iteration)
        set_lr(self.optimizer, lr_now)
        self.net.train()
        x = self.net.prepare(batch["lr"])
        target = self.net.prepare_target(batch["hr"])
        x, target = random_patches(x, target, self.opt.patch)
        with self.ctx.autocast():
            out = self.net(x)
        err = (out.float() - target).square()
        if self.opt.loss == "euclidean":
            loss = 0.5 * err.sum() / len(x)
        else:
            loss = err.mean()
        self.ctx.step(self.optimizer, loss, {"pixel": loss})
        return {"pixel": float(loss.detach()), "lr": lr_now}

    @torch.no_grad()
    def sample(self, lr: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        return self.net.super_resolve(lr)

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The weights ``progface bench --weights vdsr=RUN/weights.safetensors`` loads."""
        facts = {**self.net.config_dict(), "method": "vdsr", "recipe": "vdsr",
                 "iterations": self.iteration, "training_data": self.cfg.data.train}  # fmt: skip
        return self.net.state_dict(), facts
