"""Turn a trained SR network into what ``bench`` and ``upscale`` call: LR [0, 1] -> SR [0, 1]."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn

from progface.weights import WeightsError
from progface.weights.generators import build_from_weights

__all__ = ["GeneratorRunner", "SuperResolver", "load_generator_method", "load_trained_method"]


class SuperResolver(nn.Module):
    """Wraps a network with a ``super_resolve(lr)`` method (VDSR, URDGN, FSRNet, ...).

    Shape:
        ``[B,3,16,16]`` in [0, 1] -> ``[B,3,128,128]``, nominally in [0, 1] (not clamped).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        if not callable(getattr(net, "super_resolve", None)):
            raise TypeError(f"{type(net).__name__} has no super_resolve(lr) method")
        self.net = net

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if lr.ndim != 4 or lr.shape[1] != 3:
            raise ValueError(f"expected LR faces [B,3,H,W], got shape {tuple(lr.shape)}")
        return self.net.super_resolve(lr)


def load_trained_method(
    path: str | os.PathLike[str] | None,
    *,
    method: str,
    architecture: str,
    build: Callable[[dict], nn.Module],
    device: str = "cpu",
) -> SuperResolver:
    """Build and load the network in ``path`` for ``method``, in eval mode on ``device``.

    A file whose config names another method (e.g. FSRGAN weights passed to ``fsrnet``) is
    refused, so a table row never silently shows another method's network.
    """
    if path is None:
        raise WeightsError(
            f"method {method!r} needs trained weights: train them with `progface train --recipe "
            f"{method}` and pass --weights {method}=PATH"
        )
    net, config = build_from_weights(path, architecture, build)
    trained_as = config.get("method", method)
    if trained_as != method:
        raise WeightsError(f"{path}: holds {trained_as!r} weights, not {method!r} weights")
    return SuperResolver(net).to(device).eval()


class GeneratorRunner(nn.Module):
    """A registered generator as a method: ``[B,3,16,16]`` in [0, 1] -> ``[B,3,128,128]``,
    nominally in [0, 1] (not clamped).

    ``interface`` says how the network is called: ``"super_resolve"`` (the generator contract:
    its ``super_resolve(lr)``, else ``forward(lr)``) or ``"progressive"`` (``forward(x, step,
    alpha)`` on [-1, 1] images, at the step and alpha it was exported with).
    """

    def __init__(
        self, net: nn.Module, interface: str = "super_resolve", step: int = 3, alpha: float = 1.0
    ) -> None:
        super().__init__()
        if interface not in ("super_resolve", "progressive"):
            raise ValueError(f"unknown generator interface {interface!r}")
        self.net, self.interface, self.step, self.alpha = net, interface, step, alpha

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if self.interface == "progressive":
            return self.net(lr * 2 - 1, self.step, self.alpha) * 0.5 + 0.5
        run = getattr(self.net, "super_resolve", None)
        return run(lr) if callable(run) else self.net(lr)


def load_generator_method(
    generator: str, path: str | os.PathLike[str] | None, device: str = "cpu"
) -> GeneratorRunner:
    """The registered ``generator`` built and loaded from a weight file that a ``progface
    train`` run exported for it (its metadata names the generator and its build options).

    Raises:
        WeightsError: no file, or a file of another generator or with other tensors.
    """
    from progface import plugins
    from progface.weights import load_safetensors, load_state_checked

    spec = plugins.get("generators", generator)
    if path is None:
        raise WeightsError(
            f"generator {spec.name!r} has no method of its own: give its trained weights, "
            f"--weights {spec.name}=RUN/weights.safetensors (made by `progface train --recipe "
            f"sr --generator {spec.name}`)"
        )
    tensors, facts = load_safetensors(path)
    if facts.get("generator") != spec.name:
        held = facts.get("generator") or facts.get("architecture") or "unnamed"
        raise WeightsError(
            f"{path}: holds weights of {held!r}, not of generator {spec.name!r} (the metadata "
            "of a `progface train` export names its generator)"
        )
    interface = facts.get("interface", "super_resolve")
    step = int(facts.get("step", 3))
    if interface == "progressive" and step != 3:
        raise WeightsError(
            f"{path}: the generator was trained up to step {step} ({16 * 2**step} px); "
            "running it as a method needs step 3 (128 px)"
        )
    try:
        net = spec.build(**facts.get("generator_options", {}))
    except (TypeError, ValueError) as err:
        raise WeightsError(
            f"{path}: its generator_options do not build {spec.name!r} ({err})"
        ) from err
    load_state_checked(net, tensors, path)
    alpha = float(facts.get("alpha", 1.0))
    return GeneratorRunner(net, interface, step, alpha).to(device).eval()
