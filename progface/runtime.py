"""Small shared pieces of the user-facing jobs: device choice, method loading, run facts."""

from __future__ import annotations

import datetime
import platform
from pathlib import Path
from typing import Any

from progface import plugins
from progface.weights import WeightsError, resolve, sha256_of


def pick_device(name: str = "auto") -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` without a GPU is an error."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but no CUDA GPU is available")
    return name


def load_method(name: str, device: str, weights: str | Path | None = None):
    """Load a registered method; returns ``(callable, facts)`` where facts name the weights."""
    spec = plugins.get("methods", name)
    check_takes_weights(spec, weights)
    facts: dict[str, Any] = {"method": spec.name, "plugin": spec.plugin, "weights": None}
    path = None
    if weights is not None or spec.weights is not None:
        path = Path(weights) if weights is not None else resolve(spec.weights)
        if not path.is_file():
            raise WeightsError(f"{path}: no such weight file (for method {name!r})")
        facts["weights"] = {"path": str(path), "sha256": sha256_of(path)}
    model = spec.load(weights=path, device=device)
    return model, facts


def check_takes_weights(spec, weights: str | Path | None, option: str = "--weights") -> None:
    """A weight file given for a method without weights (``MethodSpec.weights`` None) would
    be recorded in results as if used: refuse it."""
    if weights is not None and spec.weights is None:
        raise WeightsError(
            f"{option}: method {spec.name!r} takes no weights (given {weights}); leave it out"
        )


def run_facts(device: str) -> dict[str, Any]:
    """Versions, machine and date for results files."""
    import piq
    import torch

    import progface

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "progface": progface.__version__,
        "torch": torch.__version__,
        "piq": piq.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "device": device,
    }
