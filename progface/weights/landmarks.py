"""Weight files of the landmark networks: specs, loaders and importers.

- ``fan-distilled``: progface ships ``fan_distilled_landmarks.safetensors`` (trained here, see
  its model card). The authors' checkpoint (a legacy whole-module pickle) converts with
  :func:`import_fan_distilled` (``progface weights import fan-distilled SRC DST``) through a
  restricted unpickler that executes no code.
- ``fan`` (FAN-4): face-alignment's ``2DFAN4-11f355bf06.pth.tar`` state dict (read with
  ``torch.load(weights_only=True)``), or its TorchScript ``2DFAN4-cd938726ad.zip`` (v1.3-1.4),
  or a converted safetensors file.

Every loader checks every key and shape against the architecture and names the file and the
first mismatches on error.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from progface.weights import (
    WeightsError,
    WeightSpec,
    check_state_dict,
    is_torchscript,
    load_safetensors,
    load_state_checked,
    resolve,
    save_safetensors,
    sha256_of,
    torch_load_data,
)

__all__ = [
    "FAN4_STATE_DICT",
    "FAN4_TORCHSCRIPT",
    "FAN_DISTILLED_SHIPPED",
    "PFSR_FAN_CHECKPOINT",
    "check_state_dict",
    "import_fan4",
    "import_fan_distilled",
    "load_fan4",
    "load_fan4_state_dict",
    "load_fan_distilled",
]

FAN_DISTILLED_CONFIG = {
    "architecture": "fan_distilled",
    "num_landmarks": 68,
    "input": "RGB in [0, 1], any size; heatmaps at the input resolution",
}

FAN_DISTILLED_SHIPPED = WeightSpec(
    filename="fan_distilled_landmarks.safetensors",
    url="",
    sha256="191b67ef9160a2f671a6c1aa5f130e8292d611da5fd1b1e46bbbccbbed92af68",
    licence="trained on CelebA, UTKFace and Helen/300-W labels: research and non-commercial use",
    shipped=True,
    config={**FAN_DISTILLED_CONFIG, "teacher": "landmarks (Gaussian heatmaps of labels)"},
)

PFSR_FAN_CHECKPOINT = WeightSpec(
    filename="compressed_model_011000.pth",
    url=(
        "https://github.com/DeokyunKim/Progressive-Face-Super-Resolution/raw/"
        "8d7a354/checkpoints/compressed_model_011000.pth"
    ),
    sha256="0fd7cd07ec542812f782833eb81ff5366fe31f9e86b7bf7b478339529ff1d7a3",
    licence="no licence given by the authors (DeokyunKim/Progressive-Face-Super-Resolution)",
    config={**FAN_DISTILLED_CONFIG, "teacher": "FAN-4", "iteration": 11000, "trained_at": 64},
)

FAN4_CONFIG = {
    "architecture": "fan4",
    "num_modules": 4,
    "num_landmarks": 68,
    "input": "RGB in [0, 1] at 256 px; 4 x 68 heatmaps at 64 px (last stack used)",
}

FAN4_STATE_DICT = WeightSpec(
    filename="2DFAN4-11f355bf06.pth.tar",
    url="https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar",
    sha256="11f355bf06",  # torch-hub style: only the prefix in the file name is published
    licence="BSD-3-Clause (1adrianb/face-alignment)",
    config=FAN4_CONFIG,
)

FAN4_TORCHSCRIPT = WeightSpec(
    filename="2DFAN4-cd938726ad.zip",
    url="https://www.adrianbulat.com/downloads/python-fan/2DFAN4-cd938726ad.zip",
    sha256="cd938726ad",
    licence="BSD-3-Clause (1adrianb/face-alignment)",
    config=FAN4_CONFIG,
)


def _load_into(model: nn.Module, state: Mapping[str, torch.Tensor], where) -> nn.Module:
    return load_state_checked(model, state, where)


# --- fan-distilled ---------------------------------------------------------------------------


def read_fan_distilled_checkpoint(src: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The 25 state-dict tensors of the authors' pickled distilled FAN (no code executed).

    Accepts the legacy whole-module pickle (``compressed_model_011000.pth``) and, for
    convenience, a zip-format ``torch.save`` of a plain state dict (``weights_only=True``).
    """
    from progface.weights.legacy_pickle import LegacyPickleError, load_legacy, module_state_dict

    src = Path(src)
    if not src.is_file():
        raise WeightsError(f"{src}: no such file")
    if zipfile.is_zipfile(src):
        try:
            obj = torch_load_data(src)
        except Exception as err:
            raise WeightsError(f"{src}: not a loadable state dict ({err})") from err
        if not isinstance(obj, Mapping):
            raise WeightsError(f"{src}: expected a state dict, got {type(obj).__name__}")
        return {k: v for k, v in obj.items()}
    try:
        record = load_legacy(src, module_classes=("fan_model.fan_squeeze",))
        if isinstance(record, Mapping):
            return dict(record)
        return dict(module_state_dict(record))
    except LegacyPickleError as err:
        raise WeightsError(str(err)) from err


def convert_fan_distilled(
    state: Mapping[str, torch.Tensor], src: str | os.PathLike[str]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Check the distilled FAN's tensors (read from ``src``) and build the safetensors config:
    every key and shape against :class:`FanDistilled`, the tensors unchanged (BN statistics
    and ``num_batches_tracked`` included), the source's name, sha256 and iteration."""
    from progface.landmarks.fan_distilled import FanDistilled

    check_state_dict(state, FanDistilled(), src)
    iteration = state.get("layers.1.num_batches_tracked")
    config = {
        **FAN_DISTILLED_CONFIG,
        "teacher": "FAN-4 (the authors' distillation)",
        "trained_at": 64,
        "source_file": Path(src).name,
        "source_sha256": sha256_of(src),
        "iteration": int(iteration) if iteration is not None else None,
        "imported_by": "progface weights import --kind fan-distilled",
    }
    return dict(state), config


def is_fan_distilled_state(obj: Any) -> bool:
    return isinstance(obj, Mapping) and {"conv.weight", "layers.9.weight"} <= set(obj)


def import_fan_distilled(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Convert the authors' distilled-FAN checkpoint ``src`` to safetensors ``dst`` (no pickled
    code runs; see :func:`read_fan_distilled_checkpoint` and :func:`convert_fan_distilled`)."""
    tensors, config = convert_fan_distilled(read_fan_distilled_checkpoint(src), src)
    return save_safetensors(tensors, dst, config)


def load_fan_distilled(weights: str | os.PathLike[str] | None = None) -> nn.Module:
    """A :class:`FanDistilled` in eval mode with weights from a safetensors file (None: the
    shipped default). A ``.pth`` file is refused with the import command to run."""
    return read_fan_distilled(weights)[0]


def read_fan_distilled(
    weights: str | os.PathLike[str] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """:func:`load_fan_distilled` and the JSON config stored with the weights (which holds,
    for progface-trained files, the shape prior fitted with them)."""
    from progface.landmarks.fan_distilled import FanDistilled

    path = resolve(FAN_DISTILLED_SHIPPED, weights)
    if path.suffix != ".safetensors":
        raise WeightsError(
            f"{path}: fan-distilled loads safetensors files; convert a checkpoint first with "
            f"`progface weights import fan-distilled {path} OUT.safetensors`"
        )
    tensors, config = load_safetensors(path)
    kwargs = {k: config[k] for k in ("num_landmarks",) if k in config}
    return _load_into(FanDistilled(**kwargs), tensors, path).eval(), config


# --- fan (FAN-4) -------------------------------------------------------------------------------


def load_fan4_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """FAN-4 tensors from face-alignment's ``.pth.tar`` (a state dict; read with
    ``weights_only=True``), its TorchScript ``.zip`` (only the tensors, read as data by the
    restricted unpickler; no TorchScript code is loaded or run), or a progface safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    if path.suffix == ".safetensors":
        return load_safetensors(path)[0]
    if is_torchscript(path):
        from progface.weights.legacy_pickle import LegacyPickleError, load_torchscript_state_dict

        try:  # read as data: torch.jit.load would run the archive's code
            return dict(load_torchscript_state_dict(path))
        except LegacyPickleError as err:
            raise WeightsError(f"{err} (TorchScript archive, read as data)") from err
    try:
        obj: Any = torch_load_data(path)
    except Exception as err:
        raise WeightsError(f"{path}: not a loadable state dict ({err})") from err
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]  # older face-alignment checkpoints wrap the state dict
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path}: expected a state dict, got {type(obj).__name__}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def convert_fan4(
    state: Mapping[str, torch.Tensor], src: str | os.PathLike[str]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Check FAN-4 tensors read from ``src`` (every key and shape) and build the config."""
    from progface.landmarks.fan import FAN

    check_state_dict(state, FAN(), src)
    config = {
        **FAN4_CONFIG,
        "source_file": Path(src).name,
        "source_sha256": sha256_of(src),
        "imported_by": "progface weights import --kind fan",
    }
    return dict(state), config


def is_fan4_state(obj: Any) -> bool:
    return isinstance(obj, Mapping) and {
        "conv1.weight",
        "m0.b1_4.conv1.weight",
        "l3.weight",
    } <= set(obj)


def import_fan4(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Convert face-alignment's FAN-4 weights (``.pth.tar`` or TorchScript ``.zip``) to
    safetensors ``dst``."""
    tensors, config = convert_fan4(load_fan4_state_dict(src), src)
    return save_safetensors(tensors, dst, config)


def load_fan4(weights: str | os.PathLike[str] | None = None) -> nn.Module:
    """FAN-4 in eval mode with face-alignment's weights (None: the cached ``.pth.tar``)."""
    from progface.landmarks.fan import FAN

    path = resolve(FAN4_STATE_DICT, weights)
    return _load_into(FAN(), load_fan4_state_dict(path), path).eval()
