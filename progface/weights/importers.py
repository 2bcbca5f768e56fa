"""``progface weights import``: convert the authors' checkpoints to safetensors.

No pickle code is executed: ``torch.load(weights_only=True)`` is a restricted unpickler that
only rebuilds tensors and plain containers, and anything else is refused. Each importer is a
:class:`Importer` in :data:`IMPORTERS` (``detect`` for ``--kind auto``, ``convert`` to write the
safetensors file); other kinds (e.g. the distilled FAN) add themselves to that dict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from progface.weights import WeightsError, save_safetensors, sha256_of, torch_load_data


def safe_load(path: str | Path) -> Any:
    """``torch.load`` with the restricted unpickler; a file that needs code is refused."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    return torch_load_data(path)


@dataclass(frozen=True)
class Importer:
    """``detect(obj)`` says whether the loaded object is this kind; ``convert(obj, src)``
    returns (tensors, config) for the safetensors file; ``read(src)`` loads the file without
    executing code (default: :func:`safe_load`; the pickled distilled FAN needs its own)."""

    description: str
    detect: Callable[[Any], bool]
    convert: Callable[[Any, Path], tuple[dict[str, torch.Tensor], dict[str, Any]]]
    default_name: Callable[[Path], str] = lambda src: f"{src.stem}.safetensors"
    read: Callable[[Path], Any] = safe_load


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


def _lazy(name: str) -> Callable[..., Any]:
    """A function of progface.weights.landmarks, imported when first called."""

    def call(*args: Any) -> Any:
        from progface.weights import landmarks as weights_io

        return getattr(weights_io, name)(*args)

    return call


IMPORTERS: dict[str, Importer] = {
    "generator": Importer(
        "the authors' generator .ckpt (step, alpha, iteration, model_state_dict)",
        _is_generator_ckpt,
        _convert_generator,
    ),
    "fan-distilled": Importer(
        "the authors' distilled FAN (compressed_model_011000.pth, a pickled module; read by "
        "a restricted unpickler that rebuilds only tensors)",
        _lazy("is_fan_distilled_state"),
        _lazy("convert_fan_distilled"),
        read=_lazy("read_fan_distilled_checkpoint"),
    ),
    "fan": Importer(
        "face-alignment's FAN-4 (2DFAN4-*.pth.tar state dict or TorchScript .zip)",
        _lazy("is_fan4_state"),
        _lazy("convert_fan4"),
        read=_lazy("load_fan4_state_dict"),
    ),
}


def _detect(src: Path) -> tuple[str, Any]:
    """The one importer whose reader loads ``src`` and whose ``detect`` accepts it."""
    found, loaded, errors = [], {}, []
    for name, imp in IMPORTERS.items():
        if imp.read not in loaded:  # read the file once per reader
            loaded[imp.read] = None
            try:
                loaded[imp.read] = imp.read(src)
            except WeightsError as err:
                errors.append(str(err))
        obj = loaded[imp.read]
        if obj is not None and imp.detect(obj):
            found.append((name, obj))
    if len(found) != 1:
        known = ", ".join(IMPORTERS)
        why = f" ({errors[0]})" if not found and errors else ""
        raise WeightsError(f"{src}: cannot tell what this file is; pass --kind ({known}){why}")
    return found[0]


def import_weights(src: str | Path, dst: str | Path | None = None, kind: str = "auto",
                   overwrite: bool = False) -> Path:  # fmt: skip
    """Convert ``src`` to safetensors at ``dst`` (default: beside ``src``); returns ``dst``.

    An existing ``dst`` is replaced only with ``overwrite`` (never ``src`` itself)."""
    src = Path(src)
    if not src.is_file():
        raise WeightsError(f"{src}: no such file")
    if kind == "auto":
        kind, obj = _detect(src)
    elif kind not in IMPORTERS:
        raise WeightsError(f"unknown import kind {kind!r} (known: {', '.join(IMPORTERS)})")
    else:
        obj = IMPORTERS[kind].read(src)
    importer = IMPORTERS[kind]
    tensors, config = importer.convert(obj, src)
    dst = Path(dst) if dst is not None else src.with_name(importer.default_name(src))
    if dst.exists() and dst.resolve() == src.resolve():
        raise WeightsError(f"{dst}: the output would replace the input; choose another -o")
    try:
        return save_safetensors(tensors, dst, config, overwrite=overwrite)
    except FileExistsError:
        raise WeightsError(f"{dst}: exists; pass --overwrite to replace it") from None
