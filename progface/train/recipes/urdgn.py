"""The URDGN training recipe (``progface train --recipe urdgn``), after the author's Torch code.

- G loss: pixel MSE + 0.01 x non-saturating adversarial BCE(D(G(l)), real); D loss: BCE with
  real HR = 1 and G(LR) = 0 (the mean over the real and fake halves of its minibatch).
- RMSprop (decay 0.9, eps 1e-8), lr 1e-3; each network's first 10 updates use lr/50 and its
  updates up to the 30th lr/5; the lr decays per epoch as lr x 0.99^epoch, never below 1e-6.
- Balancing: when either D loss term (real or fake) is below 0.3 D is not updated; when either
  is above 0.7 G is not updated; when both would be frozen, both update.
- Data in [-1, 1]; the released code's minibatch is 128 faces = 64 real + 64 generated.

A faithful re-implementation, so the objective is fixed: the recipe takes no ``[losses]`` table.
To train the URDGN generator with other losses, use ``--recipe sr --generator urdgn``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from progface.models.urdgn import URDGNDiscriminator, URDGNGenerator
from progface.train.config import bounded
from progface.train.recipes.base import Recipe
from progface.train.schedule import set_lr

__all__ = ["URDGNOptions", "URDGNRecipe", "balance_updates", "urdgn_learning_rate"]


@dataclass
class URDGNOptions:
    """``[options]`` of the urdgn recipe."""

    iterations: int = bounded(100_000, min=1)
    lr: float = 1e-3
    rmsprop_decay: float = 0.9
    rmsprop_eps: float = 1e-8
    adversarial_weight: float = 0.01
    epoch_iterations: int = bounded(
        2_543, min=1
    )  # iterations per epoch for the decay (CelebA 162,770 / 64)
    lr_decay: float = 0.99  # per epoch
    min_lr: float = 1e-6
    warmup_updates: tuple[int, int] = (10, 30)  # lr / 50 before the first, lr / 5 before the second
    warmup_factors: tuple[float, float] = (0.02, 0.2)
    balance_low: float = 0.3  # either D term below: D is not updated
    balance_high: float = 0.7  # either D term above: G is not updated


def balance_updates(
    d_real: float, d_fake: float, low: float = 0.3, high: float = 0.7
) -> tuple[bool, bool]:
    """The author's rule: ``(update_d, update_g)`` from D's loss on real and on fake faces."""
    update_d = not (d_real < low or d_fake < low)
    update_g = not (d_real > high or d_fake > high)
    if not update_d and not update_g:
        return True, True
    return update_d, update_g


def urdgn_learning_rate(options: URDGNOptions, updates: int, iteration: int) -> float:
    """The lr of a network's next update, given how many updates it has had so far."""
    epoch = iteration // max(options.epoch_iterations, 1)
    lr = max(options.lr * options.lr_decay**epoch, options.min_lr)
    for limit, factor in zip(options.warmup_updates, options.warmup_factors):
        if updates < limit:
            return lr * factor
    return lr


class URDGNRecipe(Recipe):
    """URDGN's generator, discriminator, optimisers and one adversarial iteration."""

    def __init__(self, cfg, ctx) -> None:
        opt = cfg.options
        self.cfg, self.ctx, self.opt = cfg, ctx, opt
        self.generator = ctx.prepare(URDGNGenerator())
        self.discriminator = ctx.prepare(URDGNDiscriminator())
        kw = {"lr": opt.lr, "alpha": opt.rmsprop_decay, "eps": opt.rmsprop_eps}
        self.opt_g = torch.optim.RMSprop(self.generator.parameters(), **kw)
        self.opt_d = torch.optim.RMSprop(self.discriminator.parameters(), **kw)
        self.total_iterations = opt.iterations
        self.updates = {"g": 0, "d": 0}
        self.iteration = 0
        for net in self.updates:  # the groups always hold the lr of each network's next update
            self._set_lr(net, 0)

    def models(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.opt_g, "discriminator": self.opt_d}

    def _set_lr(self, net: str, iteration: int) -> None:
        optimizer = self.opt_g if net == "g" else self.opt_d
        set_lr(optimizer, urdgn_learning_rate(self.opt, self.updates[net], iteration))

    def _mean_over_ranks(self, values: torch.Tensor) -> torch.Tensor:
        # Every rank must take the same update decision, or the gradient all-reduce hangs.
        if self.ctx.world_size > 1:
            values = values.clone()
            dist.all_reduce(values)
            values /= self.ctx.world_size
        return values

    def train_step(self, batch: dict[str, Any], iteration: int) -> dict[str, float]:
        self.iteration = iteration + 1
        g, d, opt = self.generator, self.discriminator, self.opt
        g.train()
        d.train()
        hr, lr = batch["hr"] * 2 - 1, batch["lr"] * 2 - 1
        real, fake_label = hr.new_ones(len(hr)), hr.new_zeros(len(hr))
        with self.ctx.autocast():
            fake = g(lr)
            d_real = F.binary_cross_entropy_with_logits(d(hr).float(), real)
            d_fake = F.binary_cross_entropy_with_logits(d(fake.detach()).float(), fake_label)
        terms = self._mean_over_ranks(torch.stack([d_real.detach(), d_fake.detach()]))
        update_d, update_g = balance_updates(
            float(terms[0]), float(terms[1]), opt.balance_low, opt.balance_high
        )
        if update_d:
            self._set_lr("d", iteration)
            d_loss = 0.5 * (d_real + d_fake)
            self.ctx.step(self.opt_d, d_loss, {"d_real": d_real, "d_fake": d_fake})
            self.updates["d"] += 1
        pixel = F.mse_loss(fake.float(), hr)
        # The adversarial term is logged every iteration; it has a graph only when G updates.
        with torch.set_grad_enabled(update_g), self.ctx.autocast():
            adversarial = F.binary_cross_entropy_with_logits(d(fake).float(), real)
        if update_g:
            self._set_lr("g", iteration)
            loss = pixel + opt.adversarial_weight * adversarial
            self.ctx.step(self.opt_g, loss, {"pixel": pixel, "adversarial": adversarial})
            self.updates["g"] += 1
        return {"pixel": float(pixel.detach()), "adversarial": float(adversarial.detach()),
                "d_real": float(terms[0]), "d_fake": float(terms[1]),
                "d_updated": float(update_d), "g_updated": float(update_g)}  # fmt: skip

    @torch.no_grad()
    def sample(self, lr: torch.Tensor) -> torch.Tensor:
        self.generator.eval()
        return self.generator.super_resolve(lr)

    def state(self) -> dict[str, Any]:
        return {"g_updates": self.updates["g"], "d_updates": self.updates["d"]}

    def load_state(self, state: dict[str, Any]) -> None:
        self.updates = {"g": int(state["g_updates"]), "d": int(state["d_updates"])}

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The generator weights ``progface bench --weights urdgn=...`` loads."""
        facts = {**self.generator.config_dict(), "method": "urdgn", "recipe": "urdgn",
                 "iterations": self.iteration, "training_data": self.cfg.data.train}  # fmt: skip
        return self.generator.state_dict(), facts
