"""Typed specs that plugins register, and the registries that hold them.

A plugin's hook receives a ``register`` callable and calls it with one of the spec dataclasses
below. The core records which plugin registered what, rejects a name registered twice (naming
both plugins) and answers unknown names with the closest known ones.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from progface.weights import WeightSpec


@dataclass(frozen=True)
class _Spec:
    """Fields every spec has: the name, other names for it, and (filled in by the core) the
    plugin that registered it."""

    name: str
    aliases: tuple[str, ...] = field(default=(), kw_only=True)
    plugin: str = field(default="", kw_only=True)


@dataclass(frozen=True)
class GeneratorSpec(_Spec):
    """A trainable SR network. ``build(**config)`` returns an ``nn.Module``.

    The contract the generic ``sr`` recipe, ``bench`` and ``upscale`` rely on: the module's
    ``super_resolve(lr)`` (or, when it has none, ``forward(lr)``) maps LR faces
    ``Tensor[B,3,16,16]`` in [0, 1] to SR faces ``Tensor[B,3,128,128]`` in [0, 1] (not clamped,
    differentiable); any preprocessing (bicubic upsampling, a [-1, 1] range) happens inside.
    ``build`` takes the keyword options of ``options.generator_options`` (JSON values). A
    generator without a method of its own runs in ``bench``/``upscale`` from the weights a
    ``progface train`` run exports (``--weights NAME=RUN/weights.safetensors``). Generators for
    the ``progressive`` recipe instead provide ``forward(x, step, alpha)`` on [-1, 1] images
    (step 1/2/3: 32/64/128 px outputs, alpha the fade-in weight).
    """

    build: Callable[..., Any]
    description: str = ""


@dataclass(frozen=True)
class MethodSpec(_Spec):
    """What ``bench`` and ``upscale`` run.

    ``load(weights=None, device="cpu")`` returns a callable that maps LR faces
    ``Tensor[B,3,16,16]`` in [0, 1] to SR faces ``Tensor[B,3,128,128]`` in [0, 1]; the method does
    its own preprocessing. ``weights`` is the default weight file (None: none needed).
    ``count_parameters()`` (optional) returns the network's parameter count without weights.
    ``default_for`` names the jobs that use this method when the user names none: ``"upscale"``
    (one method) and ``"bench"`` (the compared set), so no built-in name is written in the core.
    """

    load: Callable[..., Callable[[Any], Any]]
    description: str = ""
    weights: WeightSpec | None = None
    generator: str | None = None
    count_parameters: Callable[[], int] | None = None
    default_for: tuple[str, ...] = ()


@dataclass(frozen=True)
class HeatmapSourceSpec(_Spec):
    """A landmark heatmap source. ``build(**options)`` returns an object with ``num_landmarks`` and
    ``__call__(images: Tensor[B,3,H,W] in [0,1]) -> Tensor[B,N,h,w]``."""

    build: Callable[..., Any]
    description: str = ""
    weights: WeightSpec | None = None
    count_parameters: Callable[[], int] | None = None


@dataclass(frozen=True)
class LossSpec(_Spec):
    """A training loss: one term of a recipe's ``[losses]`` table (``NAME = weight``).

    ``build(**objects, **options)`` returns a module called as ``loss(sr, hr, batch)`` that
    returns a scalar tensor (differentiable in ``sr``):

    - ``sr``: the generator's output ``[B,3,H,W]``; ``hr``: the target at the same size
      (128 px, or 32/64 px at the progressive recipe's steps 1/2). Both are in ``input_range``
      ([0, 1] unless the spec says otherwise; the recipe maps them).
    - ``batch``: a mapping of the training batch as the loader gives it, in [0, 1]: ``lr``
      (``[B,3,16,16]``), ``hr`` (128 px), ``x32``/``x64``, ``landmarks`` (``[B,68,2]`` in
      128-px pixel coordinates, with ``data.landmarks = true``) and, when the recipe has a
      heatmap source, ``heatmaps``: the source's heatmaps ``[B,N,h,w]`` of the target
      (computed on first use, without gradients, shared by every term).
    - ``objects``: the recipe's objects named in ``needs``, passed by keyword at build time:
      ``source`` (the heatmap source, ``options.heatmap_source``) and ``critic`` (a callable
      mapping images in ``input_range`` to discriminator scores; only recipes that train a
      discriminator have one). A recipe that lacks a needed object says so.
    - ``options``: the keyword options of the config's ``[loss_options.NAME]`` table.

    ``input_range`` is the value range ``sr`` and ``hr`` are given in: the paper's losses take
    the generator's [-1, 1], in which the authors' weights were set.
    """

    build: Callable[..., Any]
    description: str = ""
    needs: tuple[str, ...] = ()
    input_range: tuple[float, float] = (0.0, 1.0)


@dataclass(frozen=True)
class MetricSpec(_Spec):
    """A per-image quality metric: ``fn(sr, hr) -> Tensor[B]`` on [B,3,H,W] images in [0, 1]."""

    fn: Callable[[Any, Any], Any]
    description: str = ""
    higher_is_better: bool = True
    unit: str = ""


@dataclass(frozen=True)
class DatasetSpec(_Spec):
    """A dataset of HR faces. ``build(root, **options)`` returns a ``torch.utils.data.Dataset``."""

    build: Callable[..., Any]
    description: str = ""


@dataclass(frozen=True)
class RecipeSpec(_Spec):
    """A training recipe for ``progface train`` (see :mod:`progface.train.loop`).

    ``build(config, ctx, **objects)`` returns a ``Recipe`` (models, optimisers, one training
    step); ``options`` is the dataclass of the recipe's ``[options]`` config section and
    ``presets`` maps preset names to nested config overrides (``{"options": {...}}``).
    ``datasets(config)`` (optional) returns the (train, val) datasets instead of the loop's
    ``FaceFolder`` pair, e.g. faces with landmarks for distillation. ``losses`` is the default
    ``[losses]`` table (registered loss name -> weight, or a list of per-step weights); None
    for a recipe with a fixed objective, which then refuses a ``[losses]`` table.
    """

    build: Callable[..., Any]
    options: type
    presets: dict[str, dict[str, Any]] = field(default_factory=dict, hash=False, compare=False)
    datasets: Callable[..., Any] | None = None
    description: str = ""
    method: str | None = None  # the method that runs this recipe's exported weights
    # bench table row of a run trained with a preset, where it differs from the preset's name
    # (e.g. the progressive recipe's own presets are Table 2's full method, "table2-full")
    preset_rows: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    losses: dict[str, Any] | None = field(default=None, hash=False, compare=False)


@dataclass(frozen=True)
class FaceDetectorSpec(_Spec):
    """A face detector for photos (``progface upscale`` on photos, :mod:`progface.faces`).

    ``build(**options)`` returns an object with ``name`` and ``detect(image) -> list[Face]``
    (the protocol of :class:`progface.faces.detect.FaceDetector`: ``image`` a uint8 HxWx3 RGB
    array; each ``Face`` has a box, a score and 5 landmarks in photo pixels). ``summary``: one
    line for ``progface plugins``/``models``; ``extra``: the pip extra the detector needs
    (``pip install 'progface[EXTRA]'`` is named when building it fails for a missing import;
    None: nothing beyond progface); ``default_for``: the jobs that use it when none is named
    (``"upscale"``), as for methods.
    """

    build: Callable[..., Any]
    summary: str = ""
    extra: str | None = "faces"
    default_for: tuple[str, ...] = ()


SPEC_KINDS: dict[str, type] = {
    "generators": GeneratorSpec,
    "methods": MethodSpec,
    "heatmap_sources": HeatmapSourceSpec,
    "losses": LossSpec,
    "metrics": MetricSpec,
    "datasets": DatasetSpec,
    "recipes": RecipeSpec,
    "face_detectors": FaceDetectorSpec,
}

S = TypeVar("S")


class UnknownNameError(KeyError):
    """An unknown registry name; the message suggests the closest known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateNameError(ValueError):
    """Two plugins registered the same name."""


@dataclass
class Registry(Generic[S]):
    """Name -> spec for one kind of thing (``kind`` is e.g. ``"methods"``)."""

    kind: str
    _specs: dict[str, S] = field(default_factory=dict)
    _aliases: dict[str, str] = field(default_factory=dict)

    @property
    def what(self) -> str:
        """One thing of this kind, in words ("loss", "heatmap source")."""
        one = self.kind[:-2] if self.kind.endswith("sses") else self.kind[:-1]
        return one.replace("_", " ")

    def add(self, spec: S) -> None:
        for name in (spec.name, *spec.aliases):  # type: ignore[attr-defined]
            owner = self._specs.get(name) or self._specs.get(self._aliases.get(name, ""))
            if owner is not None:
                raise DuplicateNameError(
                    f"{self.what} {name!r} is registered by both plugin "
                    f"{owner.plugin!r} and plugin {spec.plugin!r}"  # type: ignore[attr-defined]
                )
        self._specs[spec.name] = spec  # type: ignore[attr-defined]
        for alias in spec.aliases:  # type: ignore[attr-defined]
            self._aliases[alias] = spec.name  # type: ignore[attr-defined]

    def discard(self, spec: S) -> None:
        """Remove ``spec`` and its aliases (a plugin that failed half-way contributes nothing)."""
        self._specs.pop(spec.name, None)  # type: ignore[attr-defined]
        for alias in spec.aliases:  # type: ignore[attr-defined]
            self._aliases.pop(alias, None)

    def get(self, name: str) -> S:
        key = self._aliases.get(name, name)
        if key in self._specs:
            return self._specs[key]
        known = sorted({*self._specs, *self._aliases})
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        what = self.what
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownNameError(
            f"unknown {what} {name!r}{hint} (known: {', '.join(known) or 'none'})"
        )

    def __contains__(self, name: object) -> bool:
        return name in self._specs or name in self._aliases

    def __iter__(self) -> Iterator[S]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def names(self) -> list[str]:
        return list(self._specs)
