"""Shared pieces of the baseline recipe tests (not a test module)."""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F

from progface.data.degrade import degrade_chain
from progface.train.config import load_config


class SmoothFaces(torch.utils.data.Dataset):
    """Smooth random 128 px "faces" with the paper's LR chain, named like files."""

    def __init__(self, n: int = 4) -> None:
        gen = torch.Generator().manual_seed(7)
        coarse = torch.rand(n, 3, 8, 8, generator=gen)
        self.hr = F.interpolate(coarse, size=128, mode="bilinear", align_corners=False)
        self.x64, self.x32, self.lr = degrade_chain(self.hr, (64, 32, 16))

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, i):
        return {"name": f"face_{i}.png", "hr": self.hr[i], "x64": self.x64[i],
                "x32": self.x32[i], "lr": self.lr[i]}  # fmt: skip


class CornerHeatmaps:
    """A custom heatmap source (the library API): 3 blobs at fixed spots of the face."""

    num_landmarks = 3

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        b, _, h, w = images.shape
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        spots = [(0.3, 0.4), (0.7, 0.4), (0.5, 0.75)]
        maps = [torch.exp(-((xs - x * w) ** 2 + (ys - y * h) ** 2) / (2 * (h / 32) ** 2))
                for x, y in spots]  # fmt: skip
        return torch.stack(maps).expand(b, -1, -1, -1).to(images)


def cfg(recipe, out, *extra, preset="default"):
    return load_config(
        overrides=[f'out="{out}"', "loop.batch_size=2", "data.workers=0", "loop.log_every=1",
                   "loop.progress=false", "loop.val_every=0", "loop.checkpoint_every=2",
                   "loop.keep_checkpoints=0", "loop.grid_faces=2", *extra],
        recipe=recipe, preset=preset,
    )  # fmt: skip


def run_log(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
