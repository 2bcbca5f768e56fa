"""The generic training loop behind ``progface train``, driven by a small :class:`Recipe`.

A recipe owns its models, optimisers and one training iteration; this loop owns everything
around it: seeded data order, data-parallel processes under ``torchrun`` (gradients averaged
across ranks), checkpoints with every model, optimiser, RNG state and counter (so ``--resume``
continues bit-exactly), a progress bar, a JSONL metrics log, periodic validation (PSNR/SSIM)
with a sample grid (LR | SR | HR), and a guard that stops on a NaN/inf loss naming the term.

Run folder::

    OUT/config.toml              the resolved config
    OUT/metrics.jsonl            {"kind": "train" | "val" | "error", "iteration": ..., ...}
    OUT/checkpoints/ckpt_*.safetensors
    OUT/samples/iter_*.png       LR | SR | HR rows of the first validation faces
    OUT/weights.safetensors      the recipe's inference weights (``Recipe.export``), if any
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler, Subset

from progface.io.atomic import write_text_atomic
from progface.train.checkpoint import (
    checkpoint_name,
    latest_checkpoint,
    load_newest_valid,
    prune_checkpoints,
    rng_state,
    save_checkpoint,
)
from progface.train.config import TrainConfig, config_dict, to_toml

# --- the recipe protocol -------------------------------------------------------------------


@runtime_checkable
class Recipe(Protocol):
    """What a training method provides to the loop.

    ``train_step`` runs one iteration (forward, backward, optimiser steps; use
    :meth:`Context.step` so gradients are averaged across ranks and non-finite losses are
    caught) and returns its loss terms as floats. ``sample`` maps LR faces in [0, 1] to SR faces
    in [0, 1] at the current output size (eval mode, no grad); a recipe that is not SR (e.g.
    distillation) may leave it out. ``state``/``load_state`` carry
    extra JSON counters (e.g. step and alpha) through checkpoints; ``state`` is also shown in
    the progress bar and the metrics log. Optional methods: ``validate(val_data, iteration)``
    returns the recipe's own validation figures (instead of PSNR/SSIM of ``sample``),
    ``save_grid(batch, path)`` draws its own sample figure, ``export()`` returns the inference
    weights (tensors, config).
    """

    total_iterations: int

    def models(self) -> dict[str, nn.Module]: ...

    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    def train_step(self, batch: dict[str, Any], iteration: int) -> dict[str, float]: ...

    def sample(self, lr: torch.Tensor) -> torch.Tensor: ...

    def state(self) -> dict[str, Any]: ...

    def load_state(self, state: dict[str, Any]) -> None: ...


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or inf; the run stops and keeps its last good checkpoint."""

    def __init__(self, iteration: int, term: str, value: float) -> None:
        super().__init__(
            f"loss term {term!r} is {value} at iteration {iteration}; stopping "
            "(the last good checkpoint is kept; lower the learning rate or resume from it)"
        )
        self.iteration, self.term, self.value = iteration, term, value


# --- the context a recipe is built with ----------------------------------------------------


@dataclass
class Context:
    """Device, process group and precision facts, and the helpers a recipe needs."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    bf16: bool = False
    channels_last: bool = False
    iteration: int = 0  # set by the loop before each train_step

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        """bfloat16 autocast when enabled (wrap forward passes, not backward)."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def prepare(self, module: nn.Module) -> nn.Module:
        """Move a model to the device (and to channels_last when enabled)."""
        module = module.to(self.device)
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def images(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:  # images only (not e.g. landmarks [B, N, 2])
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def check(self, terms: Mapping[str, torch.Tensor | float]) -> None:
        """Raise NonFiniteLossError naming the first NaN/inf term (on every rank at once)."""
        values = torch.stack(
            [
                torch.as_tensor(v, device=self.device).detach().float().reshape(())
                for v in terms.values()
            ]
        )
        if self.world_size > 1:
            dist.all_reduce(values)  # a NaN on any rank reaches all ranks
        finite = torch.isfinite(values)
        if not bool(finite.all()):
            bad = int((~finite).nonzero()[0])
            raise NonFiniteLossError(self.iteration, list(terms)[bad], float(values[bad]))

    def step(
        self,
        optimizer: torch.optim.Optimizer,
        loss: torch.Tensor,
        terms: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        """Check ``terms`` (and ``loss``), backward, average gradients across ranks, step."""
        self.check({**(terms or {}), "total": loss})
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.world_size > 1:
            average_gradients(p for g in optimizer.param_groups for p in g["params"])
        optimizer.step()


def average_gradients(params) -> None:
    """All-reduce the gradients of ``params`` (one flat buffer) and divide by the world size."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def average_buffers(model: nn.Module) -> None:
    """Average floating buffers (BatchNorm running statistics) across ranks."""
    for buf in model.buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf)
            buf /= dist.get_world_size()


def broadcast_state(model: nn.Module) -> None:
    """Make every rank start from rank 0's parameters and buffers."""
    for tensor in model.state_dict().values():
        dist.broadcast(tensor, 0)


# --- data ----------------------------------------------------------------------------------


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


def _quiet() -> torch.Generator:
    """A DataLoader draws its worker seed from this instead of the global RNG, so creating
    a loader (for validation, or after a resume) leaves the training RNG stream unchanged."""
    return torch.Generator().manual_seed(0)


def _to_device(batch: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return {k: ctx.images(v) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


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


# --- validation and sample grids -----------------------------------------------------------


@torch.no_grad()
def validate(recipe: Recipe, data: Dataset, ctx: Context, batch_size: int) -> dict[str, Any]:
    """Mean per-image PSNR/SSIM of ``recipe.sample`` and of bilinear upsampling (reference)."""
    from progface.metrics.quality import psnr, ssim

    loader = DataLoader(data, batch_size=batch_size, shuffle=False, generator=_quiet())
    sums = {"psnr": 0.0, "ssim": 0.0, "bilinear_psnr": 0.0, "bilinear_ssim": 0.0}
    count, size = 0, 0
    for batch in loader:
        batch = _to_device(batch, ctx)
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


# --- logging -------------------------------------------------------------------------------


class MetricsLog:
    """Append-only JSONL (rank 0 only)."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled = path, enabled

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def cut(self, iteration: int) -> None:
        """Drop the records after ``iteration`` (and a line torn by a kill): a resumed run
        logs those iterations again."""
        if not self.enabled or not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("iteration", 0) <= iteration:
                kept.append(line + "\n")
        write_text_atomic(self.path, "".join(kept))


def _fmt(values: Mapping[str, Any]) -> str:
    out = []
    for k, v in values.items():
        out.append(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}")
    return " ".join(out)


def _eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


# --- distributed setup ---------------------------------------------------------------------


def setup_distributed(device: str) -> tuple[int, int, torch.device, bool]:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1.

    Returns (rank, world, device, joined): ``joined`` is True when this call created the group
    (and the caller should destroy it at the end)."""
    from progface.jobs.runtime import pick_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    name = pick_device(device)
    if name == "cuda":
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device(name)
    joined = world > 1 and not dist.is_initialized()
    if joined:
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return rank, world, dev, joined


# --- the loop ------------------------------------------------------------------------------


def train(
    cfg: TrainConfig,
    *,
    spec: Any = None,
    train_data: Dataset | None = None,
    val_data: Dataset | None = None,
    resume: bool = False,
    **objects: Any,
) -> Path:
    """Run (or resume) training as ``cfg`` says; returns the run folder.

    ``spec`` is the RecipeSpec (default: the registered ``cfg.recipe``); ``train_data`` and
    ``val_data`` replace the folders of ``cfg.data``; ``objects`` go to the recipe's build
    (e.g. ``heatmap_source=`` for the progressive recipe).
    """
    if spec is None:
        from progface import plugins

        spec = plugins.get("recipes", cfg.recipe)
    if cfg.loop.threads:
        torch.set_num_threads(cfg.loop.threads)
    rank, world, device, joined = setup_distributed(cfg.loop.device)
    ctx = Context(device, rank, world, cfg.loop.bf16, cfg.loop.channels_last)
    try:
        return _train(cfg, spec, ctx, train_data, val_data, resume, objects)
    finally:
        if joined:
            dist.destroy_process_group()


def _train(cfg, spec, ctx: Context, train_data, val_data, resume, objects) -> Path:
    rank, world, device = ctx.rank, ctx.world_size, ctx.device
    out = Path(cfg.out)
    ckpt_dir = out / "checkpoints"
    if not resume and ctx.is_main and latest_checkpoint(ckpt_dir) is not None:
        raise FileExistsError(
            f"{out}: the run folder already has checkpoints; pass --resume to continue it "
            "or choose another output folder"
        )
    if resume and latest_checkpoint(ckpt_dir) is None:  # before any data or model is built
        raise FileNotFoundError(f"{ckpt_dir}: --resume found no checkpoint to resume from")
    if train_data is None:
        train_data, val_data = (getattr(spec, "datasets", None) or build_datasets)(cfg)

    seed_everything(cfg.seed)  # same initial weights on every rank
    recipe = spec.build(cfg, ctx, **objects)
    models, optimizers = recipe.models(), recipe.optimizers()
    if world > 1:
        for model in models.values():
            broadcast_state(model)
    seed_everything(cfg.seed + rank)
    if ctx.is_main:  # only now: a run that fails to start leaves no folder behind
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        (out / "samples").mkdir(exist_ok=True)
        write_text_atomic(out / "config.toml", to_toml(config_dict(cfg)))
    train_data, val_data = _skip_unreadable(train_data, val_data, out, ctx)

    start = 0
    if resume:
        found, meta = load_newest_valid(ckpt_dir, models=models, optimizers=optimizers, rank=rank)
        if len(meta["rng"]) != world and ctx.is_main:
            print(f"progface: {found.name} was saved by {len(meta['rng'])} processes, now "
                  f"{world}; the RNG streams differ from the original run", file=sys.stderr)  # fmt: skip
        recipe.load_state(meta["recipe_state"])
        start = meta["iteration"]

    log = MetricsLog(out / "metrics.jsonl", ctx.is_main)
    if resume:
        log.cut(start)
    total = recipe.total_iterations
    end = min(total, cfg.loop.stop_at) if cfg.loop.stop_at else total
    sampler = InfiniteBatchSampler(
        len(train_data), cfg.loop.batch_size, cfg.seed, start, rank, world
    )
    loader = DataLoader(
        train_data,
        batch_sampler=sampler,
        num_workers=cfg.data.workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(cfg.seed),  # keeps the global RNG untouched
    )
    batches = iter(loader)
    is_sr = hasattr(recipe, "sample")  # SR recipes get PSNR/SSIM and LR | SR | HR grids
    draws = is_sr or hasattr(recipe, "save_grid")
    grid_batch = (
        _grid_batch(val_data if val_data is not None else train_data, cfg, ctx) if draws else None
    )

    from tqdm.auto import tqdm

    tty = sys.stderr.isatty()
    bar = tqdm(total=end, initial=start, disable=not (ctx.is_main and cfg.loop.progress and tty),
               dynamic_ncols=True, desc=cfg.recipe)  # fmt: skip
    sums: dict[str, float] = {}
    n_logged, t_log, t0 = 0, time.perf_counter(), time.perf_counter()
    for it in range(start, end):
        batch = _to_device(next(batches), ctx)
        ctx.iteration = it
        try:
            terms = recipe.train_step(batch, it)
            ctx.check(terms)
        except NonFiniteLossError as err:
            log.write({"kind": "error", "iteration": it, "term": err.term, "error": str(err)})
            bar.close()
            raise
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        n_logged += 1
        done = it + 1
        state = recipe.state()
        bar.update(1)
        bar.set_postfix_str(_fmt({**state, **terms}), refresh=False)

        if done % cfg.loop.log_every == 0 or done == end:
            now = time.perf_counter()
            sec = (now - t_log) / n_logged
            record = {"kind": "train", "iteration": done, **state,
                      **{k: v / n_logged for k, v in sums.items()},
                      "sec_per_it": sec, "elapsed_s": now - t0}  # fmt: skip
            log.write(record)
            if ctx.is_main and cfg.loop.progress and not tty:
                eta = _eta(sec * (end - done))
                print(f"[{done}/{end}] {_fmt({**state, **record})} eta {eta}",
                      file=sys.stderr, flush=True)  # fmt: skip
            sums, n_logged, t_log = {}, 0, now

        val_due = done == end or (cfg.loop.val_every and done % cfg.loop.val_every == 0)
        ckpt_due = done == end or (
            cfg.loop.checkpoint_every and done % cfg.loop.checkpoint_every == 0
        )
        if (val_due or ckpt_due) and world > 1:
            for model in models.values():
                average_buffers(model)
        if val_due and ctx.is_main:
            # a recipe may bring its own validation and figure (e.g. landmark NME, heatmaps)
            own = getattr(recipe, "validate", None)
            if val_data is not None and (own is not None or is_sr):
                scores = (own(val_data, done) if own is not None
                          else validate(recipe, val_data, ctx, cfg.loop.batch_size))  # fmt: skip
                log.write({"kind": "val", "iteration": done, **state, **scores})
                _keep_best(recipe, out, done, scores)
            if grid_batch is not None:
                grid = getattr(recipe, "save_grid", None) or (lambda b, p: save_grid(recipe, b, p))
                grid(grid_batch, out / "samples" / f"iter_{done:08d}.png")
        if ckpt_due:
            _save(recipe, models, optimizers, ckpt_dir / checkpoint_name(done), done, cfg, ctx)
            if ctx.is_main:
                prune_checkpoints(ckpt_dir, cfg.loop.keep_checkpoints)
                export = getattr(recipe, "export", None)
                if export is not None:
                    from progface.weights import save_safetensors

                    tensors, facts = export()
                    save_safetensors(tensors, out / "weights.safetensors", facts)
    bar.close()
    if world > 1:
        dist.barrier()
    return out


def seed_everything(seed: int) -> None:
    """Seed torch's, Python's and numpy's global RNGs (recipes and datasets may use any)."""
    import random

    import numpy as np

    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def _skip_unreadable(train_data, val_data, out: Path, ctx: Context):
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


def _keep_best(recipe: Recipe, out: Path, iteration: int, scores: Mapping[str, Any]) -> None:
    """Export the recipe's weights to ``OUT/best.safetensors`` when validation improves.

    Better = a larger output size (a later progressive step), or the same size and a higher
    val PSNR. ``OUT/best.json`` records what the file holds, so a resumed run goes on from it.
    """
    export = getattr(recipe, "export", None)
    if export is None or "psnr" not in scores:
        return
    record = {"iteration": iteration, "psnr": float(scores["psnr"]),
              "ssim": float(scores.get("ssim", float("nan"))), "size": int(scores.get("size", 0))}  # fmt: skip
    path = out / "best.json"
    if path.is_file():
        best = json.loads(path.read_text(encoding="utf-8"))
        if (record["size"], record["psnr"]) <= (best["size"], best["psnr"]):
            return
    from progface.weights import save_safetensors

    tensors, facts = export()
    save_safetensors(tensors, out / "best.safetensors", {**facts, "val": record})
    write_text_atomic(path, json.dumps(record) + "\n")


def _grid_batch(data: Dataset, cfg: TrainConfig, ctx: Context) -> dict[str, Any]:
    n = min(cfg.loop.grid_faces, len(data))
    batch = next(iter(DataLoader(data, batch_size=n, shuffle=False, generator=_quiet())))
    return _to_device(batch, ctx)


def check_in_sync(models: dict[str, nn.Module]) -> None:
    """Raise if the ranks' parameters differ (a data-parallel bug, never expected)."""
    sums = torch.stack([torch.stack([p.detach().double().sum() for p in m.parameters()]).sum()
                        for m in models.values()]).cpu()  # fmt: skip
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, sums)
    if any(not torch.equal(g, gathered[0]) for g in gathered):
        raise RuntimeError(f"data-parallel ranks diverged: parameter sums {gathered}")


def _save(recipe, models, optimizers, path: Path, iteration: int, cfg, ctx: Context) -> None:
    mine = rng_state()
    if ctx.world_size > 1:
        check_in_sync(models)
        states: list[Any] = [None] * ctx.world_size
        dist.all_gather_object(states, ({k: v.cpu() for k, v in mine[0].items()}, mine[1]))
    else:
        states = [mine]
    if ctx.is_main:
        import progface

        save_checkpoint(
            path,
            models=models,
            optimizers=optimizers,
            iteration=iteration,
            recipe_state=recipe.state(),
            config=config_dict(cfg),
            rng=states,
            extra={
                "world_size": ctx.world_size,
                "progface": progface.__version__,
                "torch": torch.__version__,
            },  # fmt: skip
        )
