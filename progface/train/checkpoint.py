"""Training checkpoints as safetensors: every model, optimiser, RNG state and counter.

One file per checkpoint. Tensors are named ``model.<name>.<key>``, ``optim.<name>.<idx>.<key>``
and ``rng.<rank>.<generator>``; everything else (iteration, the recipe's counters, optimiser
hyper-parameters, Python's RNG state, the resolved config) is JSON in the metadata. Nothing is
unpickled on load.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from progface.weights import WeightsError, load_safetensors, load_state_checked, save_safetensors

CHECKPOINT_GLOB = "ckpt_*.safetensors"
DIGEST_KEY = "sha256"  # in the metadata: see checkpoint_digest


def checkpoint_name(iteration: int) -> str:
    return f"ckpt_{iteration:08d}.safetensors"


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """This process's RNG states: tensors (torch, numpy, cuda) and JSON (python)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors = {
        "torch": torch.get_rng_state(),
        "numpy": torch.from_numpy(keys.astype(np.int64)),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["cuda"] = torch.cuda.get_rng_state()
    py = random.getstate()
    facts = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [kind, int(pos), int(has_gauss), float(gauss)],
    }
    return tensors, facts


def set_rng_state(tensors: dict[str, torch.Tensor], facts: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["cuda"])
    kind, pos, has_gauss, gauss = facts["numpy"]
    np.random.set_state((kind, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, state, gauss_next = facts["python"]
    random.setstate((version, tuple(state), gauss_next))


def _split_optimizer(opt: torch.optim.Optimizer, prefix: str):
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _join_optimizer(tensors: dict[str, torch.Tensor], facts: dict, prefix: str) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            idx, key = name[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    for name, value in facts["scalars"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": facts["param_groups"]}


def save_checkpoint(
    path: str | Path,
    *,
    models: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    iteration: int,
    recipe_state: dict[str, Any],
    config: dict[str, Any],
    rng: list[tuple[dict[str, torch.Tensor], dict[str, Any]]],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write one checkpoint atomically. ``rng`` holds one (tensors, facts) pair per rank."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {
        "format": "progface-train-checkpoint/1",
        "iteration": iteration,
        "recipe_state": recipe_state,
        "config": config,
        "optimizers": {},
        "rng": [],
        **(extra or {}),
    }
    for name, model in models.items():
        for key, value in model.state_dict().items():
            tensors[f"model.{name}.{key}"] = value
    for name, opt in optimizers.items():
        t, facts = _split_optimizer(opt, f"optim.{name}")
        tensors.update(t)
        meta["optimizers"][name] = facts
    for rank, (t, facts) in enumerate(rng):
        tensors.update({f"rng.{rank}.{k}": v for k, v in t.items()})
        meta["rng"].append(facts)
    meta = json.loads(json.dumps(meta))  # what load reads back (tuples become lists ...)
    meta[DIGEST_KEY] = checkpoint_digest(tensors, meta)
    return save_safetensors(tensors, path, meta)


def checkpoint_digest(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> str:
    """sha256 over the metadata (without the digest) and every tensor's name, dtype, shape
    and bytes: flipped bits anywhere in a checkpoint change it."""
    digest = hashlib.sha256()
    facts = {k: v for k, v in meta.items() if k != DIGEST_KEY}
    digest.update(json.dumps(facts, sort_keys=True).encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata of a checkpoint, verified against its stored digest."""
    tensors, meta = load_safetensors(path)
    if meta.get("format") != "progface-train-checkpoint/1":
        raise WeightsError(f"{path}: not a progface training checkpoint")
    stored = meta.get(DIGEST_KEY)
    if stored is not None and stored != checkpoint_digest(tensors, meta):
        raise WeightsError(f"{path}: checksum mismatch (the file is corrupt)")
    return tensors, meta


def load_checkpoint(
    path: str | Path,
    *,
    models: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    rank: int = 0,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Restore models, optimisers and (for ``rank``) the RNG; returns the metadata.

    The file is verified (:func:`read_checkpoint`) before anything is restored."""
    tensors, meta = read_checkpoint(path)
    for name, model in models.items():
        prefix = f"model.{name}."
        sd = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        load_state_checked(model, sd, f"{path} (model {name!r})")
    for name, opt in optimizers.items():
        if name not in meta["optimizers"]:
            raise WeightsError(f"{path}: no state for optimiser {name!r}")
        opt.load_state_dict(_join_optimizer(tensors, meta["optimizers"][name], f"optim.{name}"))
    if restore_rng and rank < len(meta["rng"]):
        prefix = f"rng.{rank}."
        rng = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        set_rng_state(rng, meta["rng"][rank])
    return meta


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The checkpoint with the highest iteration in ``folder`` (None when there is none)."""
    found = sorted(Path(folder).glob(CHECKPOINT_GLOB))
    return found[-1] if found else None


def load_newest_valid(folder: str | Path, **kwargs: Any) -> tuple[Path, dict[str, Any]]:
    """Load the newest checkpoint of ``folder`` that reads and verifies; a corrupt or truncated
    newer one is reported on stderr and skipped. ``kwargs`` go to :func:`load_checkpoint`."""
    found = sorted(Path(folder).glob(CHECKPOINT_GLOB), reverse=True)
    if not found:
        raise FileNotFoundError(f"{folder}: --resume found no checkpoint to resume from")
    for path in found:
        try:
            return path, load_checkpoint(path, **kwargs)
        except WeightsError as err:
            print(f"progface: skipping checkpoint {err}; trying an older one", file=sys.stderr)
    raise FileNotFoundError(f"{folder}: no valid checkpoint to resume from ({len(found)} corrupt)")


def prune_checkpoints(folder: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (``keep`` 0: keep all)."""
    if keep <= 0:
        return
    for old in sorted(Path(folder).glob(CHECKPOINT_GLOB))[:-keep]:
        old.unlink(missing_ok=True)
