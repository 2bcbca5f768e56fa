"""The base class of training recipes: what a training method gives the loop.

A recipe owns its models, optimisers and one training iteration; :func:`progface.train.loop.train`
owns the rest (data, processes, checkpoints, logs, validation). Subclass :class:`Recipe`, set
``total_iterations`` and define the three required methods; the optional hooks below default
to what the loop does without them. A ``RecipeSpec``'s ``build(cfg, ctx, **objects)`` returns
the instance (see ``docs/training.md``; ``tests/train/toy_recipe.py`` is a complete example).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn


class Recipe:
    """A training method for the generic loop.

    Required: ``total_iterations`` (an int attribute), :meth:`models`, :meth:`optimizers` and
    :meth:`train_step`. Optional, with defaults: :meth:`sample` (SR recipes), :meth:`state`
    and :meth:`load_state`, :meth:`validate`, :meth:`save_grid`, :meth:`export`.
    """

    total_iterations: int  # the run's length: the loop stops there (or at loop.stop_at)

    # --- required ------------------------------------------------------------------------

    def models(self) -> dict[str, nn.Module]:
        """Every trained module by name: checkpointed, kept in sync across ranks."""
        raise NotImplementedError(f"{type(self).__name__} must define models()")

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimiser by name: checkpointed with its state."""
        raise NotImplementedError(f"{type(self).__name__} must define optimizers()")

    def train_step(self, batch: dict[str, Any], iteration: int) -> dict[str, float]:
        """One iteration on ``batch`` (tensors on the device, images in [0, 1]): forward,
        backward and optimiser steps through ``ctx.step(optimizer, loss, terms)``, which
        checks the terms, averages gradients across ranks and steps. Returns the loss terms
        as floats (logged, and checked for NaN/inf)."""
        raise NotImplementedError(f"{type(self).__name__} must define train_step()")

    # --- optional hooks ------------------------------------------------------------------

    def sample(self, lr: Tensor) -> Tensor:
        """SR faces in [0, 1] at the current output size from LR faces in [0, 1] (eval mode, no
        grad). Defining it makes the recipe an SR recipe (:attr:`super_resolves`): the loop
        then validates with PSNR/SSIM and draws LR | SR | HR grids unless :meth:`validate`
        and :meth:`save_grid` bring the recipe's own."""
        raise NotImplementedError(
            f"{type(self).__name__} has no sample(): it does not super-resolve faces"
        )

    @property
    def super_resolves(self) -> bool:
        """Whether the recipe defines :meth:`sample`."""
        return type(self).sample is not Recipe.sample

    def state(self) -> dict[str, Any]:
        """JSON counters carried through checkpoints (e.g. step and alpha); also shown in the
        progress bar and the metrics log."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned, on ``--resume``."""

    def validate(self, val_data: Any, iteration: int) -> dict[str, Any] | None:
        """The recipe's own validation figures on ``val_data`` (logged as ``kind: val``);
        None: the loop's PSNR/SSIM of :meth:`sample` (SR recipes), else no figures."""
        return None

    def save_grid(self, batch: dict[str, Any], path: Path) -> Path | None:
        """Draw the recipe's own figure of ``batch`` (the first validation faces) at ``path``
        and return it; None: the loop's LR | SR | HR rows of :meth:`sample` (SR recipes),
        else no figure."""
        return None

    def export(self) -> tuple[dict[str, Tensor], dict[str, Any]] | None:
        """The inference weights (tensors, JSON facts) written to ``OUT/weights.safetensors``
        at each checkpoint and to ``OUT/best.safetensors`` when validation PSNR improves;
        None: the recipe has no inference weights."""
        return None
