"""A tiny recipe and dataset for testing the generic loop (not a test module)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from progface.registry import RecipeSpec
from progface.train.recipes.base import Recipe


@dataclass
class ToyOptions:
    iterations: int = 4
    lr: float = 1e-2
    nan_at: int = -1  # iteration whose loss is made NaN (-1: never)
    noise: float = 0.01  # input noise (exercises the RNG state on resume)
    bn: bool = True


class ToyDataset(torch.utils.data.Dataset):
    """Random faces: lr [3,4,4] and hr [3,8,8] in [0, 1]."""

    def __init__(self, n: int = 12) -> None:
        gen = torch.Generator().manual_seed(123)
        self.hr = torch.rand(n, 3, 8, 8, generator=gen)
        self.lr = torch.nn.functional.avg_pool2d(self.hr, 2)

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, i):
        return {"name": f"{i}.png", "hr": self.hr[i], "lr": self.lr[i]}


class ToyCore(Recipe):
    """Everything but ``sample``: a recipe that is not SR (no PSNR, no grids)."""

    def __init__(self, cfg, ctx):
        self.ctx, self.opt_cfg = ctx, cfg.options
        norm = nn.BatchNorm2d(4) if cfg.options.bn else nn.Identity()
        self.net = ctx.prepare(
            nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(3, 4, 3, padding=1),
                          norm, nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1))
        )  # fmt: skip
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.options.lr, betas=(0.0, 0.99))
        self.total_iterations = cfg.options.iterations
        self.seen = 0

    def models(self):
        return {"net": self.net}

    def optimizers(self):
        return {"net": self.opt}

    def train_step(self, batch, iteration):
        self.net.train()
        noise = torch.randn_like(batch["lr"]) * self.opt_cfg.noise
        loss = (self.net(batch["lr"] + noise) - batch["hr"]).abs().mean()
        if iteration == self.opt_cfg.nan_at:
            loss = loss * float("nan")
        self.ctx.step(self.opt, loss, {"l1": loss})
        self.seen += 1
        return {"l1": float(loss.detach())}

    def state(self):
        return {"seen": self.seen}

    def load_state(self, state):
        self.seen = state["seen"]


class ToyRecipe(ToyCore):
    @torch.no_grad()
    def sample(self, lr):
        self.net.eval()
        return self.net(lr)


class ToyNotSR(ToyCore):
    def validate(self, data, iteration):
        return {"items": len(data)}


TOY_SPEC = RecipeSpec(
    name="toy",
    build=lambda cfg, ctx, **objects: ToyRecipe(cfg, ctx),
    options=ToyOptions,
    presets={"fast": {"options": {"lr": 0.1}, "loop": {"batch_size": 2}}},
    description="test recipe",
)
