"""The generic training loop behind ``progface train``, driven by a recipe.

A recipe (:class:`~progface.train.recipes.base.Recipe`) owns its models, optimisers and one
training iteration. This loop owns everything around it: the seeded data order
(:mod:`~progface.train.data`), data-parallel processes under ``torchrun`` with gradients
averaged across ranks (:mod:`~progface.train.context`), checkpoints holding every model,
optimiser, RNG state and counter, so that ``--resume`` continues bit-exactly
(:mod:`~progface.train.checkpoint`), a progress bar and a JSONL metrics log
(:mod:`~progface.train.log`), periodic validation with a sample grid
(:mod:`~progface.train.validation`), and a guard that stops on a NaN/inf loss naming the term.

Run folder::

    OUT/config.toml              the resolved config
    OUT/metrics.jsonl            {"kind": "train" | "val" | "error", "iteration": ..., ...}
    OUT/checkpoints/ckpt_*.safetensors
    OUT/samples/iter_*.png       LR | SR | HR rows of the first validation faces
    OUT/weights.safetensors      the recipe's inference weights (``Recipe.export``), if any
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Dataset

from progface.io.atomic import write_text_atomic
from progface.train.checkpoint import (
    checkpoint_name,
    latest_checkpoint,
    load_newest_valid,
    prune_checkpoints,
    save_checkpoint,
)
from progface.train.config import TrainConfig, config_dict, load_config, to_toml
from progface.train.context import (
    Context,
    NonFiniteLossError,
    average_buffers,
    broadcast_state,
    check_in_sync,
    gather_rng_states,
    seed_everything,
    setup_distributed,
)
from progface.train.data import build_datasets, grid_batch, skip_unreadable, to_device, train_loader
from progface.train.log import MetricsLog, Progress
from progface.train.recipes.base import Recipe
from progface.train.validation import run_validation


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


def resume_config(out: str | Path, overrides: Iterable[str] = (), **kwargs: Any) -> TrainConfig:
    """The config that continues the run in ``out`` (``--resume --out RUN``): the run's own
    ``config.toml`` (when it has one), then ``overrides``. The run goes on to the recipe's
    total: ``loop.stop_at`` pauses one invocation, so the pause point the run folder recorded
    is dropped unless ``overrides`` set a new one. ``kwargs`` go to ``load_config``."""
    path = Path(out) / "config.toml"
    sets = [f"out={json.dumps(str(out))}", "loop.stop_at=0", *overrides]
    return load_config(path if path.is_file() else None, sets, **kwargs)


def _train(cfg, spec, ctx: Context, train_data, val_data, resume: bool, objects) -> Path:
    out = Path(cfg.out)
    _check_run_folder(out, resume, ctx)  # before any data or model is built
    if train_data is None:
        train_data, val_data = (spec.datasets or build_datasets)(cfg)
    recipe = _build_recipe(spec, cfg, ctx, objects)
    models, optimizers = recipe.models(), recipe.optimizers()
    if ctx.is_main:  # only now: a run that fails to start leaves no folder behind
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        (out / "samples").mkdir(exist_ok=True)
        write_text_atomic(out / "config.toml", to_toml(config_dict(cfg)))
    train_data, val_data = skip_unreadable(train_data, val_data, out, ctx)
    start = _restore(recipe, models, optimizers, out, ctx) if resume else 0
    log = MetricsLog(out / "metrics.jsonl", ctx.is_main)
    if resume:
        log.cut(start)
    end = min(recipe.total_iterations, cfg.loop.stop_at or recipe.total_iterations)
    if start >= end and ctx.is_main:
        print(f"progface: {out} is at iteration {start} already and this run ends at {end}; "
              "raise options.iterations (or loop.stop_at) to go on", file=sys.stderr)  # fmt: skip
    batches = iter(train_loader(train_data, cfg, start, ctx))
    grid = grid_batch(val_data if val_data is not None else train_data, cfg.loop.grid_faces, ctx)

    progress = Progress(log, cfg, start, end, ctx.is_main)
    for it in range(start, end):
        batch = to_device(next(batches), ctx)
        ctx.iteration = it
        try:
            terms = recipe.train_step(batch, it)
            ctx.check(terms)
        except NonFiniteLossError as err:
            log.write({"kind": "error", "iteration": it, "term": err.term, "error": str(err)})
            progress.close()
            raise
        done = it + 1
        progress.update(done, terms, recipe.state())

        val_due = done == end or (cfg.loop.val_every and done % cfg.loop.val_every == 0)
        ckpt_due = done == end or (
            cfg.loop.checkpoint_every and done % cfg.loop.checkpoint_every == 0
        )
        if (val_due or ckpt_due) and ctx.world_size > 1:
            for model in models.values():  # BatchNorm statistics: the mean over the ranks
                average_buffers(model)
        if val_due and ctx.is_main:
            run_validation(recipe, val_data, grid, out, done, cfg, ctx, log)
        if ckpt_due:
            _checkpoint(recipe, models, optimizers, out, done, cfg, ctx)
    progress.close()
    if ctx.world_size > 1:
        dist.barrier()
    return out


def _check_run_folder(out: Path, resume: bool, ctx: Context) -> None:
    """A new run needs a folder without checkpoints, a resumed one a folder with some."""
    ckpt_dir = out / "checkpoints"
    if not resume and ctx.is_main and latest_checkpoint(ckpt_dir) is not None:
        raise FileExistsError(
            f"{out}: the run folder already has checkpoints; pass --resume to continue it "
            "or choose another output folder"
        )
    if resume and latest_checkpoint(ckpt_dir) is None:
        raise FileNotFoundError(f"{ckpt_dir}: --resume found no checkpoint to resume from")


def _build_recipe(spec, cfg: TrainConfig, ctx: Context, objects: dict[str, Any]) -> Recipe:
    """The recipe, with the same initial weights on every rank; then one RNG stream per rank."""
    seed_everything(cfg.seed)
    recipe = spec.build(cfg, ctx, **objects)
    if not isinstance(recipe, Recipe):
        raise TypeError(
            f"recipe {spec.name!r} built a {type(recipe).__name__}, which does not subclass "
            "progface.train.recipes.base.Recipe"
        )
    if ctx.world_size > 1:
        for model in recipe.models().values():
            broadcast_state(model)
    seed_everything(cfg.seed + ctx.rank)
    return recipe


def _restore(recipe: Recipe, models, optimizers, out: Path, ctx: Context) -> int:
    """Load the newest valid checkpoint of the run; returns its iteration."""
    found, meta = load_newest_valid(
        out / "checkpoints", models=models, optimizers=optimizers, rank=ctx.rank
    )
    if len(meta["rng"]) != ctx.world_size and ctx.is_main:
        print(f"progface: {found.name} was saved by {len(meta['rng'])} processes, now "
              f"{ctx.world_size}; the RNG streams differ from the original run", file=sys.stderr)  # fmt: skip
    recipe.load_state(meta["recipe_state"])
    return meta["iteration"]


def _checkpoint(recipe: Recipe, models, optimizers, out: Path, iteration: int, cfg, ctx) -> None:
    """Save a checkpoint (with every rank's RNG state), prune old ones, export the weights."""
    if ctx.world_size > 1:
        check_in_sync(models)
    rng = gather_rng_states(ctx)
    if not ctx.is_main:
        return
    import progface

    save_checkpoint(
        out / "checkpoints" / checkpoint_name(iteration),
        models=models,
        optimizers=optimizers,
        iteration=iteration,
        recipe_state=recipe.state(),
        config=config_dict(cfg),
        rng=rng,
        extra={
            "world_size": ctx.world_size,
            "progface": progface.__version__,
            "torch": torch.__version__,
        },  # fmt: skip
    )
    prune_checkpoints(out / "checkpoints", cfg.loop.keep_checkpoints)
    weights = recipe.export()
    if weights is not None:
        from progface.weights import save_safetensors

        tensors, facts = weights
        save_safetensors(tensors, out / "weights.safetensors", facts)
