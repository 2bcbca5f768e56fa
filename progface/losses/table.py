"""A recipe's ``[losses]`` table: registered losses, their per-step weights, one weighted sum.

The table maps registered loss names (``progface.registry.LossSpec``; aliases work) to a weight,
or to one weight per step of a recipe with several steps (the progressive recipe has 3; a
single number applies at every step). A term whose weight is 0 at a step is not computed there;
a term that is 0 at every trained step is not even built. The calling convention of a loss is
in the docstring of ``LossSpec``; :func:`build_terms` resolves and builds the terms and
:func:`weighted_sum` computes them in table order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["LossBatch", "Term", "build_terms", "parse_table", "to_range", "weighted_sum"]


@dataclass
class Term:
    """One entry of the table: ``key`` is the name it was given (and is logged under)."""

    key: str
    spec: Any  # LossSpec
    weights: list[float]  # one per step
    module: Any = None  # the built loss (None while unbuilt or unused)

    def weight(self, step: int) -> float:
        return self.weights[step - 1]


def parse_table(table: Mapping[str, Any], steps: int, recipe: str) -> list[Term]:
    """Resolve every name through the registry and expand weights to ``steps`` values.

    Raises the registry's "did you mean" error for an unknown name, and ValueError for a weight
    list of the wrong length or two names of one loss.
    """
    from progface import plugins

    terms: list[Term] = []
    seen: dict[str, str] = {}
    for key, value in table.items():
        spec = plugins.get("losses", key)
        if spec.name in seen:
            raise ValueError(
                f"losses.{seen[spec.name]} and losses.{key} name the same loss {spec.name!r}"
            )
        seen[spec.name] = key
        if isinstance(value, (list, tuple)):
            if len(value) != steps:
                what = (
                    "one step: give one weight (a number)"
                    if steps == 1
                    else f"{steps} steps: give one weight for all of them or a list of {steps}"
                )
                raise ValueError(f"losses.{key}: recipe {recipe!r} has {what}, got {list(value)}")
            weights = [float(v) for v in value]
        else:
            weights = [float(value)] * steps
        terms.append(Term(key, spec, weights))
    return terms


def build_terms(
    terms: list[Term],
    *,
    recipe: str,
    objects: Mapping[str, Callable[[], Any]],
    defaults: Mapping[str, Mapping[str, Any]] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    prebuilt: Mapping[str, Any] | None = None,
    device: torch.device | str | None = None,
    used: Callable[[Term], bool] = lambda term: any(term.weights),
) -> list[Term]:
    """Build the ``used`` terms (in table order; the others keep ``module`` None); returns all.

    ``objects`` maps what a loss may need (``source``, ``critic``) to a function that makes it
    (called once, when the first term that needs it is built); a need the recipe cannot meet is
    a ValueError naming the loss. Build options: the recipe's ``defaults`` (by spec name), then
    the config's ``options`` (``[loss_options]``, by table key or spec name). ``prebuilt`` maps
    spec names to ready modules (library API, tests).
    """
    made: dict[str, Any] = {}
    defaults, options = defaults or {}, options or {}
    known = {t.key for t in terms} | {t.spec.name for t in terms}
    for name in options:
        if name not in known:
            raise ValueError(f"loss_options.{name}: no such term in [losses]")
    for term in terms:
        if not used(term):
            continue
        missing = [n for n in term.spec.needs if n not in objects]
        if missing:
            raise ValueError(
                f"loss {term.key!r} needs a {' and a '.join(missing)}, which recipe {recipe!r} "
                "does not provide; leave it out of [losses]"
            )
        if prebuilt and term.spec.name in prebuilt:
            module = prebuilt[term.spec.name]
        else:
            for need in term.spec.needs:
                if need not in made:
                    made[need] = objects[need]()
            kwargs = {**defaults.get(term.spec.name, {}), **options.get(term.spec.name, {}),
                      **options.get(term.key, {})}  # fmt: skip
            module = term.spec.build(**{n: made[n] for n in term.spec.needs}, **kwargs)
        if isinstance(module, nn.Module) and device is not None:
            module = module.to(device)
        term.module = module
    return terms


def to_range(x: torch.Tensor, src: tuple[float, float], dst: tuple[float, float]) -> torch.Tensor:
    """``x`` mapped linearly from range ``src`` to ``dst`` (itself when they are equal)."""
    src, dst = tuple(src), tuple(dst)
    if src == dst:
        return x
    if (src, dst) == ((0.0, 1.0), (-1.0, 1.0)):
        return x * 2 - 1
    if (src, dst) == ((-1.0, 1.0), (0.0, 1.0)):
        return x * 0.5 + 0.5
    return (x - src[0]) * ((dst[1] - dst[0]) / (src[1] - src[0])) + dst[0]


class LossBatch(Mapping):
    """The batch as losses see it: the loader's items plus lazy entries, each computed on first
    access and then shared by every term (e.g. ``heatmaps`` of the target)."""

    def __init__(self, items: Mapping[str, Any], lazy: Mapping[str, Callable[[], Any]]) -> None:
        self._items = dict(items)
        self._lazy = dict(lazy)

    def __getitem__(self, key: str) -> Any:
        if key not in self._items and key in self._lazy:
            self._items[key] = self._lazy.pop(key)()
        return self._items[key]

    def __contains__(self, key: object) -> bool:
        return key in self._items or key in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter({**self._lazy, **self._items})

    def __len__(self) -> int:
        return len(set(self._items) | set(self._lazy))


def weighted_sum(
    terms: list[Term],
    step: int,
    sr: torch.Tensor,
    hr: torch.Tensor,
    batch: Mapping[str, Any],
    image_range: tuple[float, float],
    skip: Callable[[Term], bool] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``sum(weight * loss(sr, hr, batch))`` over the terms with a nonzero weight at ``step``,
    in table order; ``sr`` and ``hr`` (given in ``image_range``) are mapped to each loss's
    ``input_range``. Returns the total and the unweighted terms by table key."""
    values: dict[str, torch.Tensor] = {}
    total = None
    for term in terms:
        w = term.weight(step)
        if not w or term.module is None or (skip is not None and skip(term)):
            continue
        want = tuple(term.spec.input_range)
        value = term.module(to_range(sr, image_range, want), to_range(hr, image_range, want), batch)
        values[term.key] = value
        total = w * value if total is None else total + w * value
    if total is None:
        raise ValueError(f"no loss term has a nonzero weight at step {step} (see [losses])")
    return total, values
