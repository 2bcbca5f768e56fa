"""Read tensors out of a legacy (non-zip, PyTorch <= 1.5) ``torch.save`` file, executing no code.

The legacy format is a sequence of pickles: a magic number, a protocol version, system info,
the saved object, the list of storage keys, then each storage's raw bytes (an int64 element
count followed by the data). The saved object may be a whole ``nn.Module`` (the Progressive
Face SR authors pickled their distilled FAN that way), which an ordinary unpickler can only
rebuild by importing and running the classes it names.

:class:`RestrictedUnpickler` resolves only a fixed allow-list of globals, and even those to
inert stand-ins defined here: tensor and parameter rebuilders that record (storage, offset,
size, stride), storage types that record a dtype, ``OrderedDict``, ``set``, and placeholder records for
``nn.Module`` classes (which store their pickled ``__dict__`` and nothing else). Any other
global, and any persistent id other than a storage or a module-class record, is rejected.
"""

from __future__ import annotations

import io
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["LegacyPickleError", "ModuleRecord", "load_legacy", "module_state_dict"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class LegacyPickleError(ValueError):
    """The file is not a legacy torch pickle this reader accepts; the message says why."""


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: torch.dtype


@dataclass
class _StorageRef:
    key: str
    dtype: torch.dtype
    numel: int


@dataclass
class PendingTensor:
    """A tensor to be cut out of a storage once the storages have been read."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(type(v) is int for v in value):
        raise LegacyPickleError(f"{what} must be a tuple of ints, got {value!r}")
    return value


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, hooks=None, *_):
    if not isinstance(storage, _StorageRef) or type(storage_offset) is not int:
        raise LegacyPickleError("malformed tensor record (expected a storage and an offset)")
    return PendingTensor(storage, storage_offset, _ints(size, "size"), _ints(stride, "stride"))


def _rebuild_parameter(data, requires_grad=True, hooks=None, *_):
    if not isinstance(data, PendingTensor):
        raise LegacyPickleError("malformed parameter record (expected a tensor)")
    return data


def _no_backend():
    """Stands in for ``torch.nn.backends.thnn._get_thnn_function_backend`` (long removed)."""
    return None


class ModuleRecord:
    """Inert placeholder for a pickled ``nn.Module``: keeps its class name and ``__dict__``."""

    class_name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # never given arguments by NEWOBJ
        if args or kwargs:
            raise LegacyPickleError(f"module class {self.class_name} called with arguments")

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise LegacyPickleError(f"module {self.class_name}: state is not a dict")
        self.state = state


_module_classes: dict[str, type] = {}


def _module_class(qualname: str) -> type:
    if qualname not in _module_classes:
        _module_classes[qualname] = type(
            "ModuleRecord", (ModuleRecord,), {"class_name": qualname, "__slots__": ()}
        )
    return _module_classes[qualname]


_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    # newer modules pickle a set of non-persistent buffer names; set() only builds a set
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.nn.backends.thnn", "_get_thnn_function_backend"): _no_backend,
    **{("torch", name): _StorageType(name, dtype) for name, dtype in STORAGE_DTYPES.items()},
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the allow-list above; everything else is an error.

    ``module_classes`` lists extra ``"module.Class"`` names (besides ``torch.nn.modules.*``)
    that may appear as module records, e.g. ``"fan_model.fan_squeeze"``.
    """

    def __init__(self, file, module_classes: tuple[str, ...] = ()) -> None:
        super().__init__(file)
        self.module_classes = set(module_classes)
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[(module, name)]
        qualname = f"{module}.{name}"
        if module.startswith("torch.nn.modules.") or qualname in self.module_classes:
            return _module_class(qualname)
        raise LegacyPickleError(f"refusing to load global {qualname!r} (not on the allow-list)")

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid:
            raise LegacyPickleError(f"unsupported persistent id {pid!r}")
        if pid[0] == "module" and len(pid) == 4 and isinstance(pid[1], type):
            if not issubclass(pid[1], ModuleRecord):
                raise LegacyPickleError(f"module record of a non-module class {pid[1]!r}")
            return pid[1]
        if pid[0] == "storage" and len(pid) == 6:
            _, kind, key, _location, numel, view = pid
            if (
                not isinstance(kind, _StorageType)
                or type(numel) is not int
                or not isinstance(key, str)
            ):
                raise LegacyPickleError(f"malformed storage record {pid[:5]!r}")
            if view is not None:
                raise LegacyPickleError("storage views are not supported")
            ref = self.storages.setdefault(key, _StorageRef(key, kind.dtype, numel))
            if ref.dtype != kind.dtype or ref.numel != numel:
                raise LegacyPickleError(f"storage {key} is declared twice with different types")
            return ref
        raise LegacyPickleError(f"unsupported persistent id of kind {pid[0]!r}")


def _read_pickle(f: io.BufferedIOBase, what: str, **kw: Any) -> Any:
    try:
        return RestrictedUnpickler(f, **kw).load()
    except LegacyPickleError:
        raise
    except Exception as err:  # truncated or garbled stream
        raise LegacyPickleError(f"cannot read the {what}: {type(err).__name__}: {err}") from err


def _load_object(reader: pickle.Unpickler, what: str):
    """``reader.load()``; anything but a refusal of ours becomes one LegacyPickleError."""
    try:
        return reader.load()
    except LegacyPickleError:
        raise
    except Exception as err:
        raise LegacyPickleError(f"cannot read {what}: {err}") from err


def _materialise(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, PendingTensor):
        flat = tensors[obj.storage.key]
        end = obj.offset + sum((s - 1) * st for s, st in zip(obj.size, obj.stride)) + 1
        if obj.size and (obj.offset < 0 or end > flat.numel()):
            raise LegacyPickleError(f"tensor {obj.size} runs past the end of its storage")
        return torch.as_strided(flat, obj.size, obj.stride, obj.offset).clone()
    if isinstance(obj, ModuleRecord):
        obj.state = _materialise(getattr(obj, "state", {}), tensors)
        return obj
    if isinstance(obj, OrderedDict):
        return OrderedDict((k, _materialise(v, tensors)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _materialise(v, tensors) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v, tensors) for v in obj)
    return obj


def load_legacy(path: str | Path, module_classes: tuple[str, ...] = ()) -> Any:
    """Load a legacy ``torch.save`` file without executing pickled code.

    Returns the saved object with tensors materialised on the CPU; pickled modules come back as
    :class:`ModuleRecord` objects (use :func:`module_state_dict`). Raises
    :class:`LegacyPickleError` naming the file for anything outside the allow-list.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(2)
            f.seek(0)
            if head == b"PK":
                raise LegacyPickleError("this is a zip-format torch file, not a legacy pickle")
            if _read_pickle(f, "magic number") != LEGACY_MAGIC:
                raise LegacyPickleError("not a legacy torch file (wrong magic number)")
            if _read_pickle(f, "protocol version") != LEGACY_PROTOCOL:
                raise LegacyPickleError("unsupported legacy protocol version")
            info = _read_pickle(f, "system info")
            if not isinstance(info, dict) or not info.get("little_endian", False):
                raise LegacyPickleError("only little-endian files are supported")
            reader = RestrictedUnpickler(f, module_classes)
            obj = _load_object(reader, "the saved object")
            keys = _read_pickle(f, "storage key list")
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise LegacyPickleError("malformed storage key list")
            tensors: dict[str, torch.Tensor] = {}
            for key in keys:
                ref = reader.storages.get(key)
                if ref is None:
                    raise LegacyPickleError(f"storage {key} is listed but never used")
                (numel,) = struct.unpack("<q", f.read(8))
                if numel != ref.numel:
                    raise LegacyPickleError(
                        f"storage {key}: {numel} elements, expected {ref.numel}"
                    )
                nbytes = numel * torch.empty((), dtype=ref.dtype).element_size()
                data = f.read(nbytes)
                if len(data) != nbytes:
                    raise LegacyPickleError(f"storage {key} is truncated")
                tensors[key] = torch.frombuffer(bytearray(data), dtype=ref.dtype)
            if set(reader.storages) - set(tensors):
                raise LegacyPickleError("some storages have no data")
            if f.read(1):
                raise LegacyPickleError("unexpected data after the last storage")
    except LegacyPickleError as err:
        raise LegacyPickleError(f"{path}: {err}") from None
    except (OSError, struct.error) as err:
        raise LegacyPickleError(f"{path}: cannot read ({err})") from err
    return _materialise(obj, tensors)


def module_state_dict(record: ModuleRecord, prefix: str = "") -> OrderedDict[str, torch.Tensor]:
    """The ``state_dict`` of a pickled module: parameters, then persistent buffers, then
    submodules recursively (``nn.Module.state_dict`` order)."""
    if not isinstance(record, ModuleRecord):
        raise LegacyPickleError(f"expected a pickled module, got {type(record).__name__}")
    state = getattr(record, "state", {})
    skip = set(state.get("_non_persistent_buffers_set") or ())
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is not None and not (group == "_buffers" and name in skip):
                if not isinstance(value, torch.Tensor):
                    raise LegacyPickleError(f"{prefix}{name} is not a tensor")
                out[prefix + name] = value
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            out.update(module_state_dict(child, f"{prefix}{name}."))
    return out


# --- TorchScript archives, read as data ------------------------------------------------------


class _ScriptUnpickler(RestrictedUnpickler):
    """The restricted unpickler for a TorchScript ``data.pkl``: its ``__torch__.*`` classes
    become inert module records and zip-format storage ids (5 fields) are accepted."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return _module_class(f"{module}.{name}")
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage":
            pid = (*pid, None)  # zip format: no view field
        return super().persistent_load(pid)


def _script_state(record: Any, prefix: str = "") -> OrderedDict[str, torch.Tensor]:
    """Tensors of a scripted module's attributes (parameters and buffers), submodules after."""
    if not isinstance(record, ModuleRecord):
        raise LegacyPickleError(f"expected a scripted module, got {type(record).__name__}")
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, value in getattr(record, "state", {}).items():
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
        elif isinstance(value, ModuleRecord):
            out.update(_script_state(value, f"{prefix}{name}."))
    return out


def load_torchscript_state_dict(path: str | Path) -> OrderedDict[str, torch.Tensor]:
    """The tensors of a TorchScript ``.zip`` (``torch.jit.save``), read as data.

    ``torch.jit.load`` would compile and run the archive's code; here only ``data.pkl`` is read,
    by the restricted unpickler, and the storages it names are cut out of ``data/``. The code
    in the archive is never looked at.
    """
    import zipfile

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            pkl = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
            if len(pkl) != 1:
                raise LegacyPickleError("no data.pkl: not a TorchScript archive")
            root = pkl[0].split("/")[0]
            order = f"{root}/byteorder"
            if order in names and zf.read(order).strip() != b"little":
                raise LegacyPickleError("only little-endian archives are supported")
            reader = _ScriptUnpickler(io.BytesIO(zf.read(pkl[0])))
            obj = _load_object(reader, "data.pkl")
            tensors = {}
            for key, ref in reader.storages.items():
                data = zf.read(f"{root}/data/{key}")
                nbytes = ref.numel * torch.empty((), dtype=ref.dtype).element_size()
                if len(data) != nbytes:
                    raise LegacyPickleError(f"storage {key}: {len(data)} bytes, expected {nbytes}")
                tensors[key] = torch.frombuffer(bytearray(data), dtype=ref.dtype)
        return _script_state(_materialise(obj, tensors))
    except LegacyPickleError as err:
        raise LegacyPickleError(f"{path}: {err}") from None
    except (OSError, KeyError, zipfile.BadZipFile) as err:
        raise LegacyPickleError(f"{path}: cannot read ({err})") from err
