"""progface.models"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

__all__ = ["configured"]

C = TypeVar("C")


def configured(model: str, config_type: type[C], config: C | None, overrides: dict[str, Any]) -> C:
    """``config`` (default ``config_type()``) with ``overrides`` replaced; lists become tuples,
    and an unknown name raises a TypeError that names ``model`` and the known fields."""
    if config is not None and not isinstance(config, config_type):
        raise TypeError(
            f"{model}: config must be a {config_type.__name__}, got {type(config).__name__}"
        )
    known = [f.name for f in dataclasses.fields(config_type)]  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise TypeError(
            f"{model} got unknown keyword argument(s) {', '.join(map(repr, unknown))}; "
            f"its {config_type.__name__} fields are {', '.join(known)}"
        )
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return dataclasses.replace(config if config is not None else config_type(), **fixed)  # type: ignore[type-var]
