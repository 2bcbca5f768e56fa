"""Weight files: specs, the cache folder, sha256 verification, download, safetensors I/O.

Files live in one cache folder (``$PROGFACE_HOME``, default ``~/.cache/progface``) unless they ship
inside the package. A spec's ``sha256`` may be a full digest or, for torch-hub style names such
as ``vgg16-397923af.pth``, only the published prefix, which is then what gets verified.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGE_WEIGHTS = Path(__file__).parent  # the shipped files live beside this module
CONFIG_KEY = "progface_config"


class WeightsError(RuntimeError):
    """A weight file is missing, unreachable or corrupt; the message says what to do."""


@dataclass(frozen=True)
class WeightSpec:
    """Where a weight file comes from and how to check it.

    Args:
        filename: the file's name in the cache (or in ``progface/weights`` when ``shipped``).
        url: download address, or "" when the file cannot be downloaded.
        sha256: full hex digest, or a hex prefix (at least 8 characters) where only that is
            published.
        licence: the licence of the weights, shown by ``progface models``.
        shipped: True when the file is inside the package.
        folder: where a shipped file lives when it is not progface's own: a plugin package
            ships its weights in its own folder (None: ``progface/weights``).
        config: architecture / preprocessing facts (also stored in safetensors metadata).
    """

    filename: str
    url: str = ""
    sha256: str = ""
    licence: str = ""
    shipped: bool = False
    config: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    folder: Path | None = None


def cache_dir() -> Path:
    """The weights cache: ``$PROGFACE_HOME`` or ``~/.cache/progface``."""
    return Path(os.environ.get("PROGFACE_HOME") or Path.home() / ".cache" / "progface")


def sha256_of(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: str | os.PathLike[str], expected: str) -> None:
    """Raise WeightsError unless the file's sha256 starts with ``expected`` (full or prefix)."""
    if not expected:
        return
    actual = sha256_of(path)
    if not actual.startswith(expected.lower()):
        raise WeightsError(
            f"{path}: sha256 mismatch (expected {expected}, got {actual}); "
            "the file is corrupt or not the one the spec names: delete it and download again"
        )


def local_path(spec: WeightSpec) -> Path:
    """Where the file lives (or would live) on this machine."""
    if spec.shipped:
        return Path(spec.folder or PACKAGE_WEIGHTS) / spec.filename
    return cache_dir() / spec.filename


def status(spec: WeightSpec | None) -> str:
    """``shipped``, ``cached``, ``missing`` or ``none needed``."""
    if spec is None:
        return "none needed"
    path = local_path(spec)
    if not path.is_file():
        return "missing"
    return "shipped" if spec.shipped else "cached"


def download(url: str, dest: Path, sha256: str = "", progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` atomically (the shared temp-file helper), verifying
    ``sha256`` before the file takes its name."""
    from progface.io.atomic import write_atomic

    def fetch(tmp: Path) -> None:
        with tmp.open("wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            from tqdm.auto import tqdm

            with tqdm(
                total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress
            ) as bar:
                for block in iter(lambda: resp.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
        verify(tmp, sha256)

    return write_atomic(dest, fetch)


def resolve(
    spec: WeightSpec, path: str | os.PathLike[str] | None = None, allow_download: bool = True
) -> Path:
    """Return a verified local path for ``spec``: an explicit ``path``, the shipped or cached file,
    or a fresh download. Offline, the error names the file, the url and where to put it."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise WeightsError(f"{path}: no such weight file")
        return path
    target = local_path(spec)
    if target.is_file():
        verify(target, spec.sha256)
        return target
    if spec.shipped:
        raise WeightsError(f"{target}: shipped weight file is missing from the installation")
    where = f"download it from {spec.url} and " if spec.url else ""
    hint = f"{where}put it at {target} (or set PROGFACE_HOME, or pass the path explicitly)"
    if not spec.url or not allow_download or os.environ.get("PROGFACE_OFFLINE") == "1":
        raise WeightsError(f"weight file {spec.filename} is not available: {hint}")
    try:
        return download(spec.url, target, spec.sha256)
    except OSError as err:
        raise WeightsError(f"could not download {spec.filename} ({err}): {hint}") from err


def save_safetensors(tensors: dict[str, Any], path: str | os.PathLike[str], config: dict,
                     overwrite: bool = True) -> Path:  # fmt: skip
    """Write ``tensors`` with ``config`` as JSON metadata, atomically (without ``overwrite``, an
    existing file raises ``FileExistsError``)."""
    from safetensors.torch import save_file

    from progface.io.atomic import write_atomic

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {CONFIG_KEY: json.dumps(config, sort_keys=True)}
    return write_atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta),
                        overwrite=overwrite)  # fmt: skip


def load_safetensors(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict]:
    """Read tensors and the JSON config stored by :func:`save_safetensors`."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as err:
        raise WeightsError(f"{path}: not a readable safetensors file ({err})") from err
    return tensors, json.loads(meta.get(CONFIG_KEY, "{}"))


def is_torchscript(path: str | os.PathLike[str]) -> bool:
    """True for a TorchScript archive (a zip with ``code/`` or ``constants.pkl``)."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in zf.namelist())


def torch_load_data(path: str | os.PathLike[str]) -> Any:
    """``torch.load`` with the restricted unpickler (tensors and plain containers only).

    TorchScript archives are refused before torch sees them (``torch.load`` would hand them to
    ``torch.jit.load``, which runs their code), whatever torch's version does.
    """
    import pickle

    import torch

    if is_torchscript(path):
        raise WeightsError(
            f"{path}: a TorchScript archive; its code is never run (FAN-4 archives are read "
            "as data by `progface weights import --kind fan`)"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise WeightsError(
            f"{path}: refused: the file needs more than tensors and plain containers to load "
            f"(arbitrary pickle code is never executed): {str(err).splitlines()[0]}"
        ) from err
    except Exception as err:  # a corrupt or foreign file can make the unpickler raise anything
        first = (str(err).splitlines() or [""])[0]
        raise WeightsError(
            f"{path}: not a readable torch file ({type(err).__name__}: {first})"
        ) from err


def check_state_dict(state: Any, model: Any, where: str | os.PathLike[str]) -> None:
    """Raise WeightsError unless ``state`` has exactly ``model``'s keys with the same shapes."""
    want = model.state_dict()
    missing = [k for k in want if k not in state]
    unexpected = [k for k in state if k not in want]
    wrong = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in want.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({', '.join(missing[:4])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({', '.join(unexpected[:4])})")
        if wrong:
            parts.append(f"{len(wrong)} wrong shapes ({'; '.join(wrong[:3])})")
        raise WeightsError(f"{where}: does not match {type(model).__name__}: {', '.join(parts)}")


def load_state_checked(model: Any, state: Any, where: str | os.PathLike[str]) -> Any:
    """``model.load_state_dict(state, strict=True)`` after :func:`check_state_dict`, so a file
    with the right keys but wrong shapes is a one-line WeightsError; returns ``model``."""
    check_state_dict(state, model, where)
    model.load_state_dict(dict(state), strict=True)
    return model


def copy_into_cache(src: str | os.PathLike[str], spec: WeightSpec) -> Path:
    """Verify ``src`` against ``spec`` and copy it to the cache (for offline installs)."""
    verify(src, spec.sha256)
    from progface.io.atomic import write_atomic

    return write_atomic(cache_dir() / spec.filename, lambda tmp: shutil.copyfile(src, tmp))
