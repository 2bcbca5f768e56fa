"""The loop's data: the datasets of a config, the seeded sampler that makes resuming exact,
the training loader, and the fixed batch that sample grids are drawn from."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler, Subset

from progface.train.config import TrainConfig
from progface.train.context import Context


class InfiniteBatchSampler(Sampler[list[int]]):
    """Batches of an endless stream of seeded per-epoch permutations, sharded by rank.

    Batch ``i`` of rank ``r`` takes stream positions ``(i*world + r)*B ... + B``, so the data
    order is a pure function of (seed, iteration) and resuming at iteration ``i`` just starts
    there.
    """

    def __init__(
        self, size: int, batch_size: int, seed: int, start: int = 0, rank: int = 0, world: int = 1
    ):
        if size <= 0:
            raise ValueError("the training set is empty")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.start, self.rank, self.world = start, rank, world
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perms = {epoch: torch.randperm(self.size, generator=gen)}  # keep one epoch
        return self._perms[epoch]

    def batch(self, iteration: int) -> list[int]:
        first = (iteration * self.world + self.rank) * self.batch_size
        return [
            int(self._perm(p // self.size)[p % self.size])
            for p in range(first, first + self.batch_size)
        ]

    def __iter__(self) -> Iterator[list[int]]:
        iteration = self.start
        while True:
            yield self.batch(iteration)
            iteration += 1


def build_datasets(cfg: TrainConfig) -> tuple[Dataset, Dataset | None]:
    """The registered ``data.dataset`` at ``data.train`` (and ``data.val``: first val_limit)."""
    from progface import plugins

    d = cfg.data
    if not d.train:
        raise ValueError("no training data: set data.train (e.g. a folder of HR faces)")
    spec = plugins.get("datasets", d.dataset)
    common: dict[str, Any] = {"quantize": d.quantize, **({"crop": d.crop} if d.crop else {})}
    marks = {"landmarks": True} if d.landmarks else {}  # training items only
    split = {"split": d.split} if d.split else {}
    roots = [r for r in d.train.split(os.pathsep) if r]
    parts = [spec.build(r, **common, **marks, **split) for r in roots]
    train: Dataset = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    if d.limit:
        train = Subset(train, range(min(d.limit, len(train))))
    if d.cache:
        from progface.data.datasets import CachedFaces

        train = CachedFaces(train)
    val = None
    if d.val:
        split = {"split": d.val_split} if d.val_split else {}
        val = spec.build(d.val, limit=d.val_limit or None, **common, **split)
    return train, val


def skip_unreadable(train_data, val_data, out: Path, ctx: Context):
    """Report the files the data sets left out as unreadable (``OUT/skipped_files.json``) and
    wrap both sets so that a file breaking later is skipped with a warning."""
    from progface.data.datasets import SkipUnreadable, unreadable_files

    skipped = [
        {"file": str(f), "reason": why, "set": name}
        for name, data in (("train", train_data), ("val", val_data))
        for f, why in (unreadable_files(data) if data is not None else [])
    ]
    if skipped and ctx.is_main:
        from progface.io.atomic import write_text_atomic

        path = write_text_atomic(out / "skipped_files.json", json.dumps(skipped, indent=2))
        print(f"progface: {len(skipped)} unreadable file(s) skipped, e.g. {skipped[0]['file']}: "
              f"{skipped[0]['reason']} (all listed in {path})", file=sys.stderr)  # fmt: skip
    wrap = SkipUnreadable
    return wrap(train_data), (wrap(val_data) if val_data is not None else None)


def quiet_generator() -> torch.Generator:
    """A DataLoader draws its worker seed from this instead of the global RNG, so creating
    a loader (for validation, or after a resume) leaves the training RNG stream unchanged."""
    return torch.Generator().manual_seed(0)


def train_loader(data: Dataset, cfg: TrainConfig, start: int, ctx: Context) -> DataLoader:
    """This rank's training batches from iteration ``start`` on (endless)."""
    sampler = InfiniteBatchSampler(
        len(data), cfg.loop.batch_size, cfg.seed, start, ctx.rank, ctx.world_size
    )
    return DataLoader(
        data,
        batch_sampler=sampler,
        num_workers=cfg.data.workers,
        pin_memory=ctx.device.type == "cuda",
        generator=torch.Generator().manual_seed(cfg.seed),  # keeps the global RNG untouched
    )


def to_device(batch: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return {k: ctx.images(v) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def grid_batch(data: Dataset, faces: int, ctx: Context) -> dict[str, Any]:
    """The first ``faces`` items of ``data``: the rows of every sample grid of a run."""
    n = min(faces, len(data))
    batch = next(iter(DataLoader(data, batch_size=n, shuffle=False, generator=quiet_generator())))
    return to_device(batch, ctx)
