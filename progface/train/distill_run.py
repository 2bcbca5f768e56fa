"""A small stand-alone loop for :class:`~progface.train.distill.DistillRecipe` on CPU or GPU.

Faces with landmarks are held in memory as uint8 (8,000 faces of 128 px: 0.4 GB); each
iteration draws a batch from a seeded per-epoch permutation (a pure function of the iteration,
so ``resume`` continues the same stream). Run folder::

    OUT/metrics.jsonl              {"kind": "train" | "val", "iteration": ..., ...}
    OUT/checkpoints/ckpt_*.safetensors   student + optimiser + iteration (newest kept)
    OUT/best.safetensors           student weights with the best validation NME
    OUT/last.safetensors           student weights at the latest checkpoint

This loop exists so that the shipped weights could be trained before the shared training loop
(``progface.train.loop``) landed; the recipe itself follows that loop's protocol.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from progface.landmarks.data import LandmarkFaces
from progface.train.distill import DistillRecipe

__all__ = ["run_distillation"]


def _batch_indices(n: int, batch_size: int, seed: int, iteration: int) -> torch.Tensor:
    first = iteration * batch_size
    out = []
    for p in range(first, first + batch_size):
        epoch = p // n
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch))
        out.append(int(perm[p % n]))
    return torch.tensor(out)


def _save_checkpoint(recipe: DistillRecipe, path: Path, iteration: int, extra: dict) -> None:
    from progface.weights import save_safetensors

    tensors: dict[str, torch.Tensor] = {}
    for name, model in recipe.models().items():
        tensors.update({f"model.{name}.{k}": v for k, v in model.state_dict().items()})
    sd = recipe.optimizer.state_dict()
    for idx, state in sd["state"].items():
        for key, value in state.items():
            tensors[f"optim.{idx}.{key}"] = torch.as_tensor(value)
    meta = {"iteration": iteration, "param_groups": sd["param_groups"], **extra}
    save_safetensors(tensors, path, meta)


def _load_checkpoint(recipe: DistillRecipe, path: Path) -> dict[str, Any]:
    from progface.weights import load_safetensors

    tensors, meta = load_safetensors(path)
    for name, model in recipe.models().items():
        prefix = f"model.{name}."
        model.load_state_dict(
            {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        )
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            idx, name = key[len("optim.") :].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    recipe.optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return meta


def run_distillation(
    recipe: DistillRecipe,
    train: LandmarkFaces,
    val: LandmarkFaces | None,
    out: str | Path,
    *,
    val_every: int = 500,
    checkpoint_every: int = 250,
    log_every: int = 25,
    select_on: str = "nme_mean",
    report: dict[str, LandmarkFaces] | None = None,
    resume: bool = False,
    progress: bool | None = None,
) -> Path:
    """Train ``recipe`` for ``recipe.total_iterations`` iterations; returns the run folder.

    Validation reports NME (percent) at 64 and 128 px; ``best.safetensors`` keeps the student
    with the lowest ``select_on`` (``nme_mean``: mean of ``nme64`` and ``nme128``). ``report``
    sets are evaluated at the same times and logged with their name as prefix, never used to
    select.
    """
    from progface.weights import save_safetensors

    out = Path(out)
    ckpt_dir = out / "checkpoints"
    found = sorted(ckpt_dir.glob("ckpt_*.safetensors"))
    if found and not resume:
        raise FileExistsError(f"{out}: has checkpoints; pass resume=True (--resume) to continue")
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    start, best = 0, float("inf")
    if resume and found:
        meta = _load_checkpoint(recipe, found[-1])
        start, best = int(meta["iteration"]), float(meta.get("best", float("inf")))
    log_path = out / "metrics.jsonl"
    bs = recipe.options.batch_size
    total = recipe.total_iterations
    tty = sys.stderr.isatty() if progress is None else progress

    def log(record: dict[str, Any]) -> None:
        with log_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=start, disable=not tty, desc="distill", dynamic_ncols=True)
    sums: dict[str, float] = {}
    count, t_log = 0, time.perf_counter()
    for it in range(start, total):
        batch = train.batch(_batch_indices(len(train), bs, recipe.options.seed, it))
        terms = recipe.train_step(batch, it)
        size = int(terms.pop("size"))
        for k, v in terms.items():
            sums[f"{k}@{size}"] = sums.get(f"{k}@{size}", 0.0) + v
            sums[f"n@{size}"] = sums.get(f"n@{size}", 0.0) + 1
        count += 1
        done = it + 1
        bar.update(1)
        if done % log_every == 0 or done == total:
            now = time.perf_counter()
            record: dict[str, Any] = {"kind": "train", "iteration": done}
            for key in [k for k in sums if not k.startswith("n@")]:
                record[key] = sums[key] / sums["n@" + key.split("@")[1]]
            record["sec_per_it"] = (now - t_log) / count
            log(record)
            if not tty:
                print(json.dumps(record), file=sys.stderr, flush=True)
            sums, count, t_log = {}, 0, now
        if val is not None and (done % val_every == 0 or done == total):
            scores = recipe.evaluate(val.float_images(), val.points, recipe.options.sizes)
            scores["nme_mean"] = sum(scores[f"nme{s}"] for s in recipe.options.sizes) / len(
                recipe.options.sizes
            )
            improved = scores[select_on] < best
            if improved:
                best = scores[select_on]
                tensors, config = recipe.export()
                save_safetensors(
                    tensors, out / "best.safetensors", config | {"iteration": done, **scores}
                )
            for name, faces in (report or {}).items():
                more = recipe.evaluate(faces.float_images(), faces.points, recipe.options.sizes)
                scores.update({f"{name}/{k}": v for k, v in more.items()})
            log({"kind": "val", "iteration": done, **scores, "best": improved})
            if not tty:
                print(json.dumps({"val": done, **scores}), file=sys.stderr, flush=True)
        if done % checkpoint_every == 0 or done == total:
            path = ckpt_dir / f"ckpt_{done:08d}.safetensors"
            _save_checkpoint(recipe, path, done, {"best": best})
            for old in sorted(ckpt_dir.glob("ckpt_*.safetensors"))[:-2]:
                old.unlink(missing_ok=True)
            tensors, config = recipe.export()
            save_safetensors(tensors, out / "last.safetensors", config | {"iteration": done})
    bar.close()
    return out
