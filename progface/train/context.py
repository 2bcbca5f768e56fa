"""What a recipe is built with (:class:`Context`), and the data-parallel plumbing around it.

Under ``torchrun`` every process runs the same loop on its own share of each batch; gradients
are averaged across ranks (:meth:`Context.step`), BatchNorm statistics before validation and
checkpoints (:func:`average_buffers`), and rank 0 alone writes files.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from progface.train.checkpoint import rng_state


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or inf; the run stops and keeps its last good checkpoint."""

    def __init__(self, iteration: int, term: str, value: float) -> None:
        super().__init__(
            f"loss term {term!r} is {value} at iteration {iteration}; stopping "
            "(the last good checkpoint is kept; lower the learning rate or resume from it)"
        )
        self.iteration, self.term, self.value = iteration, term, value


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


def seed_everything(seed: int) -> None:
    """Seed torch's, Python's and numpy's global RNGs (recipes and datasets may use any)."""
    import random

    import numpy as np

    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


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


def check_in_sync(models: dict[str, nn.Module]) -> None:
    """Raise if the ranks' parameters differ (a data-parallel bug, never expected)."""
    sums = torch.stack([torch.stack([p.detach().double().sum() for p in m.parameters()]).sum()
                        for m in models.values()]).cpu()  # fmt: skip
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, sums)
    if any(not torch.equal(g, gathered[0]) for g in gathered):
        raise RuntimeError(f"data-parallel ranks diverged: parameter sums {gathered}")


def gather_rng_states(ctx: Context) -> list[Any]:
    """Every rank's RNG state, in rank order (what a checkpoint stores)."""
    mine = rng_state()
    if ctx.world_size == 1:
        return [mine]
    states: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(states, ({k: v.cpu() for k, v in mine[0].items()}, mine[1]))
    return states
