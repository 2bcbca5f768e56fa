"""``progface weights import``: convert the authors' checkpoints to safetensors.

No pickle code is executed: ``torch.load(weights_only=True)`` is a restricted unpickler that
only rebuilds tensors and plain containers, and anything else is refused. Each importer is a
:class:`Importer` in :data:`IMPORTERS` (``detect`` for ``--kind auto``, ``convert`` to write the
safetensors file); other kinds (e.g. the distilled FAN) add themselves to that dict.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from progface.weights import WeightsError, save_safetensors, sha256_of


@dataclass(frozen=True)
class Importer:
    """One kind of foreign checkpoint.

    ``load(path)`` reads the file without executing code (default :func:`safe_load`; a kind
    stored as a whole-module pickle brings its own restricted unpickler), ``detect(obj)`` says
    whether a loaded object is this kind (for ``--kind auto``) and ``convert(obj, src)`` returns
    (tensors, config) for the safetensors file.
    """

    description: str
    detect: Callable[[Any], bool]
    convert: Callable[[Any, Path], tuple[dict[str, torch.Tensor], dict[str, Any]]]
    load: Callable[[Path], Any] | None = None  # None: safe_load
    default_name: Callable[[Path], str] = lambda src: f"{src.stem}.safetensors"

    def read(self, path: Path) -> Any:
        return (self.load or safe_load)(path)


def safe_load(path: str | Path) -> Any:
    """``torch.load`` with the restricted unpickler; a file that needs code is refused."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        raise WeightsError(
            f"{path}: refused: the file needs more than tensors and plain containers to load "
            f"(arbitrary pickle code is never executed): {str(err).splitlines()[0]}"
        ) from err


# --- the authors' generator checkpoints (.ckpt) --------------------------------------------

CKPT_KEYS = {"step", "alpha", "iteration", "model_state_dict"}


def _is_generator_ckpt(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and CKPT_KEYS <= set(obj)
        and "to_rgb.0.weight" in {k.removeprefix("module.") for k in obj["model_state_dict"]}
    )


def _convert_generator(obj: Any, src: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from progface.models.progressive import ProgressiveGenerator

    if not isinstance(obj, dict) or not CKPT_KEYS <= set(obj):
        raise WeightsError(f"{src}: not a generator checkpoint (expected keys {sorted(CKPT_KEYS)})")
    state = obj["model_state_dict"]
    prefixed = all(k.startswith("module.") for k in state)  # saved from apex/torch DDP
    state = {k.removeprefix("module.") if prefixed else k: v for k, v in state.items()}
    expected = ProgressiveGenerator().state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise WeightsError(
            f"{src}: generator keys do not match the architecture "
            f"(missing: {missing[:5]}{'...' if len(missing) > 5 else ''}; "
            f"unexpected: {unexpected[:5]}{'...' if len(unexpected) > 5 else ''})"
        )
    bad = [k for k, v in expected.items() if tuple(state[k].shape) != tuple(v.shape)]
    if bad:
        raise WeightsError(f"{src}: shape mismatch for {bad[:5]}")
    config = {
        "architecture": "progressive-generator",
        "channels": [512, 256, 128, 64],
        "step": int(obj["step"]),
        "alpha": float(obj["alpha"]),
        "iteration": int(obj["iteration"]),
        "input_range": [-1, 1],
        "output": "0.5 * y + 0.5 maps to [0, 1]",
        "source": src.name,
        "source_sha256": sha256_of(src),
        "source_ddp_prefix": prefixed,
        "imported_by": "progface weights import --kind generator",
    }
    return {k: state[k].contiguous() for k in expected}, config


IMPORTERS: dict[str, Importer] = {
    "generator": Importer(
        "the authors' generator .ckpt (step, alpha, iteration, model_state_dict)",
        _is_generator_ckpt,
        _convert_generator,
    ),
}


def import_weights(src: str | Path, dst: str | Path | None = None, kind: str = "auto") -> Path:
    """Convert ``src`` to safetensors at ``dst`` (default: beside ``src``); returns ``dst``."""
    src = Path(src)
    if not src.is_file():
        raise WeightsError(f"{src}: no such file")
    if kind == "auto":
        found, errors = [], []
        for name, importer in IMPORTERS.items():
            try:
                obj = importer.read(src)
            except WeightsError as err:  # this kind's loader refuses the file
                errors.append(err)
                continue
            if importer.detect(obj):
                found.append((name, obj))
        if not found and len(errors) == len(IMPORTERS):
            raise errors[0]
        if len(found) != 1:
            known = ", ".join(IMPORTERS)
            raise WeightsError(f"{src}: cannot tell what this file is; pass --kind ({known})")
        kind, obj = found[0]
    elif kind in IMPORTERS:
        obj = IMPORTERS[kind].read(src)
    else:
        raise WeightsError(f"unknown import kind {kind!r} (known: {', '.join(IMPORTERS)})")
    importer = IMPORTERS[kind]
    tensors, config = importer.convert(obj, src)
    dst = Path(dst) if dst is not None else src.with_name(importer.default_name(src))
    return save_safetensors(tensors, dst, config)
