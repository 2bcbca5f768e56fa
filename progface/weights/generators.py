"""Save and load a network's state_dict as safetensors with its architecture config.

The config stored in the metadata names the architecture (``"architecture": "vdsr"``) and its
constructor arguments, so a file rebuilds its own network without outside knowledge; other keys
(method, training data, iterations) are carried along for results files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from progface.weights import WeightsError, load_safetensors, load_state_checked, save_safetensors

__all__ = ["build_from_weights", "load_weights", "save_weights"]


def save_weights(model: nn.Module, path: str | os.PathLike[str], config: Mapping[str, Any]) -> Path:
    """Write ``model.state_dict()`` and ``config`` (needs an ``"architecture"`` key) atomically."""
    if "architecture" not in config:
        raise ValueError("config must name the architecture (key 'architecture')")
    return save_safetensors(model.state_dict(), path, dict(config))


def load_weights(model: nn.Module, path: str | os.PathLike[str], architecture: str) -> dict:
    """Load a file written by :func:`save_weights` into ``model`` (strict); returns its config.

    Raises:
        WeightsError: the file is unreadable, holds another architecture, or its tensors do not
            match ``model`` (the message lists missing, unexpected and mis-shaped keys).
    """
    tensors, config = _read(path, architecture)
    _load_into(model, tensors, path, architecture)
    return config


def build_from_weights(
    path: str | os.PathLike[str],
    architecture: str,
    build: Callable[[dict], nn.Module],
) -> tuple[nn.Module, dict]:
    """Build the network a weight file describes (``build(config)``) and load it."""
    tensors, config = _read(path, architecture)
    try:
        model = build(config)
    except (TypeError, ValueError) as err:
        raise WeightsError(f"{path}: its config does not build a {architecture} ({err})") from err
    _load_into(model, tensors, path, architecture)
    return model, config


def _read(path: str | os.PathLike[str], architecture: str) -> tuple[dict, dict]:
    tensors, config = load_safetensors(path)
    found = config.get("architecture")
    if found != architecture:
        raise WeightsError(
            f"{path}: holds {found or 'unnamed'} weights, not {architecture} weights"
        )
    return tensors, config


def _load_into(model: nn.Module, tensors: dict, path, architecture: str) -> None:
    try:
        load_state_checked(model, tensors, path)
    except WeightsError as err:  # name the architecture the file claims to hold
        raise WeightsError(f"{err} ({architecture} weights)") from None
