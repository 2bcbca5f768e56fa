"""Validation during training: the recipe's own figures, or PSNR/SSIM of its SR faces against
bilinear upsampling; the best weights so far; the sample grid of each validation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from progface.io.atomic import write_text_atomic
from progface.train.config import TrainConfig
from progface.train.context import Context
from progface.train.data import quiet_generator, to_device
from progface.train.log import MetricsLog
from progface.train.recipes.base import Recipe


def run_validation(
    recipe: Recipe,
    val_data: Dataset | None,
    grid: dict[str, Any],
    out: Path,
    iteration: int,
    cfg: TrainConfig,
    ctx: Context,
    log: MetricsLog,
) -> None:
    """One validation (rank 0): the figures go to the metrics log, improved weights to
    ``OUT/best.safetensors``, and the sample grid of ``grid`` to ``OUT/samples/``."""
    state = recipe.state()
    if val_data is not None:
        scores = recipe.validate(val_data, iteration)
        if scores is None and recipe.super_resolves:
            scores = validate(recipe, val_data, ctx, cfg.loop.batch_size)
        if scores is not None:
            log.write({"kind": "val", "iteration": iteration, **state, **scores})
            keep_best(recipe, out, iteration, scores)
    path = out / "samples" / f"iter_{iteration:08d}.png"
    if recipe.save_grid(grid, path) is None and recipe.super_resolves:
        save_grid(recipe, grid, path)


def target_for(batch: dict[str, Any], size: int) -> torch.Tensor:
    """The image tensor of ``batch`` whose side is ``size`` (the target of an SR output)."""
    for key in ("hr", "x64", "x32", "lr"):
        v = batch.get(key)
        if isinstance(v, torch.Tensor) and v.shape[-1] == size:
            return v
    for v in batch.values():
        if isinstance(v, torch.Tensor) and v.ndim == 4 and v.shape[-1] == size:
            return v
    raise ValueError(f"the batch has no {size}x{size} target image")


@torch.no_grad()
def validate(recipe: Recipe, data: Dataset, ctx: Context, batch_size: int) -> dict[str, Any]:
    """Mean per-image PSNR/SSIM of ``recipe.sample`` and of bilinear upsampling (reference)."""
    from progface.metrics.quality import psnr, ssim

    loader = DataLoader(data, batch_size=batch_size, shuffle=False, generator=quiet_generator())
    sums = {"psnr": 0.0, "ssim": 0.0, "bilinear_psnr": 0.0, "bilinear_ssim": 0.0}
    count, size = 0, 0
    for batch in loader:
        batch = to_device(batch, ctx)
        sr = recipe.sample(batch["lr"]).float().clamp(0, 1)
        size = sr.shape[-1]
        hr = target_for(batch, size).float()
        up = F.interpolate(batch["lr"].float(), size=(size, size), mode="bilinear", antialias=True)
        up = up.clamp(0, 1)
        sums["psnr"] += float(psnr(sr, hr).sum())
        sums["ssim"] += float(ssim(sr, hr).sum())
        sums["bilinear_psnr"] += float(psnr(up, hr).sum())
        sums["bilinear_ssim"] += float(ssim(up, hr).sum())
        count += sr.shape[0]
    return {k: v / max(count, 1) for k, v in sums.items()} | {"faces": count, "size": size}


@torch.no_grad()
def save_grid(recipe: Recipe, batch: dict[str, Any], path: Path) -> Path:
    """Rows of LR | SR | HR (nearest-enlarged to the HR size)."""
    from progface.io.figures import grid, save_atomic

    sr = recipe.sample(batch["lr"]).float().clamp(0, 1).cpu()
    hr = batch["hr"].float().cpu()
    rows = [(lr, s, h) for lr, s, h in zip(batch["lr"].cpu(), sr, hr)]
    label = f"SR {sr.shape[-1]}px"
    return save_atomic(grid(rows, ["LR", label, "HR"], size=hr.shape[-1]), path)


def keep_best(recipe: Recipe, out: Path, iteration: int, scores: Mapping[str, Any]) -> None:
    """Export the recipe's weights to ``OUT/best.safetensors`` when validation improves.

    Better = a larger output size (a later progressive step), or the same size and a higher
    val PSNR. ``OUT/best.json`` records what the file holds, so a resumed run goes on from it.
    """
    if "psnr" not in scores:
        return
    record = {"iteration": iteration, "psnr": float(scores["psnr"]),
              "ssim": float(scores.get("ssim", float("nan"))), "size": int(scores.get("size", 0))}  # fmt: skip
    path = out / "best.json"
    if path.is_file():
        best = json.loads(path.read_text(encoding="utf-8"))
        if (record["size"], record["psnr"]) <= (best["size"], best["psnr"]):
            return
    weights = recipe.export()
    if weights is None:
        return
    from progface.weights import save_safetensors

    tensors, facts = weights
    save_safetensors(tensors, out / "best.safetensors", {**facts, "val": record})
    write_text_atomic(path, json.dumps(record) + "\n")
