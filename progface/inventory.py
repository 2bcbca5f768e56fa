"""Rows for ``progface models``: every generator, method and heatmap source."""

from __future__ import annotations

from typing import Any

from progface import plugins
from progface.weights import status


def _count_built(spec) -> int | None:
    try:
        return sum(p.numel() for p in spec.build().parameters())
    except Exception:  # a generator that needs arguments to build
        return None


def model_rows() -> list[dict[str, Any]]:
    regs = plugins.registries()
    rows = []
    for spec in regs["generators"]:
        rows.append(_row("generator", spec, _count_built(spec), "-"))  # an architecture
    for kind, label in (("methods", "method"), ("heatmap_sources", "heatmap source")):
        for spec in regs[kind]:
            count = spec.count_parameters() if spec.count_parameters else None
            rows.append(_row(label, spec, count, status(spec.weights)))
    return rows


def _row(kind: str, spec, parameters: int | None, weights: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "name": spec.name,
        "plugin": spec.plugin,
        "parameters": parameters,
        "weights": weights,
        "description": spec.description,
    }
