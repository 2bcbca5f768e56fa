"""``progface bench --ablation RUN ...``: bench rows from ``progface train`` run folders.

A run folder holds ``config.toml`` (recipe, preset) and ``weights.safetensors`` (the recipe's
exported inference weights). Each folder becomes one bench row: the method its recipe trains
(``RecipeSpec.method``; when the weights name a generator that method does not run, e.g. an
``sr`` run, the method derived from that generator), loaded with those weights, labelled by the
folder's name; the preset says which row of the paper's Table 2 it is (``table2-pixel-wgan`` ...
``table2-full``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from progface import plugins
from progface.weights import load_safetensors

__all__ = ["RunRow", "ablation_rows", "read_run"]


@dataclass(frozen=True)
class RunRow:
    label: str
    method: str
    weights: Path
    recipe: str
    preset: str  # the bench table row (the recipe spec's preset_rows), else the run's preset


def read_run(folder: str | os.PathLike[str], label: str | None = None) -> RunRow:
    """What a run folder trained and where its weights are; clear errors for other folders."""
    from progface.train.config import read_toml

    folder = Path(folder)
    config = folder / "config.toml"
    weights = folder / "weights.safetensors"
    if not config.is_file():
        raise ValueError(f"{folder}: not a progface run folder (no config.toml)")
    if not weights.is_file():
        raise ValueError(
            f"{folder}: the run has no weights.safetensors yet (it is written at each checkpoint)"
        )
    raw = read_toml(config)
    recipe = str(raw.get("recipe", "progressive"))
    preset = str(raw.get("preset", "default"))
    _, facts = load_safetensors(weights)
    method = str(facts.get("method") or _recipe_method(recipe, facts.get("generator")))
    regs = plugins.registries()["recipes"]
    if recipe in regs:
        preset = regs.get(recipe).preset_rows.get(preset, preset)
    return RunRow(label or folder.name, method, weights, recipe, preset)


def _recipe_method(recipe: str, generator: str | None = None) -> str:
    """The method that runs ``recipe``'s weights: its spec's ``method`` when that method runs
    the weights' ``generator`` (or the weights name none), else the method of that generator
    (``progface.jobs.runtime.method_spec``), else the recipe's name."""
    regs = plugins.registries()["recipes"]
    method = regs.get(recipe).method if recipe in regs else None
    methods = plugins.registries()["methods"]
    if method and (generator is None or (method in methods and
                                         methods.get(method).generator == generator)):  # fmt: skip
        return method
    return generator or method or recipe


def ablation_rows(
    folders: Iterable[str | os.PathLike[str]],
) -> tuple[list[tuple[str, str, Path]], dict[str, str]]:
    """``(extra_rows, presets)`` for :func:`progface.jobs.bench.run_bench` and
    :func:`progface.jobs.bench_tables.table2_markdown`; labels are the folder names (made unique
    with their parents when two folders share a name)."""
    folders = [Path(f) for f in folders]
    names = [f.name for f in folders]
    runs = []
    for folder in folders:
        label = (
            folder.name if names.count(folder.name) == 1 else f"{folder.parent.name}/{folder.name}"
        )
        runs.append(read_run(folder, label))
    labels = [r.label for r in runs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"--ablation: two run folders share the label among {labels}")
    return [(r.label, r.method, r.weights) for r in runs], {r.label: r.preset for r in runs}
