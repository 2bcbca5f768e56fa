"""Hook specifications: one hook per kind of thing a plugin can add.

A plugin is a module (or object) with functions marked ``@progface.hookimpl``. Each
``register_*`` hook receives a ``register`` callable; call it with a spec from
:mod:`progface.registry`. Third-party packages expose their plugin module as an entry point::

    [project.entry-points.progface]
    my_plugin = "progface_my_plugin"
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import pluggy

F = TypeVar("F", bound=Callable[..., Any])
hookspec = pluggy.HookspecMarker("progface")
hookimpl = cast(Callable[[F], F], pluggy.HookimplMarker("progface"))


@hookspec
def register_generators(register):
    """Register trainable SR networks: ``register(GeneratorSpec(...))``."""


@hookspec
def register_methods(register):
    """Register methods for ``bench`` and ``upscale``: ``register(MethodSpec(...))``."""


@hookspec
def register_heatmap_sources(register):
    """Register landmark heatmap sources: ``register(HeatmapSourceSpec(...))``."""


@hookspec
def register_losses(register):
    """Register training losses: ``register(LossSpec(...))``."""


@hookspec
def register_metrics(register):
    """Register per-image metrics: ``register(MetricSpec(...))``."""


@hookspec
def register_datasets(register):
    """Register datasets: ``register(DatasetSpec(...))``."""


@hookspec
def register_recipes(register):
    """Register training recipes for ``progface train``: ``register(RecipeSpec(...))``."""


@hookspec
def register_face_detectors(register):
    """Register face detectors for photos: ``register(FaceDetectorSpec(...))``."""


@hookspec
def register_commands(cli):
    """Add top-level click commands: ``cli.add_command(...)`` (or ``@cli.command()``).

    ``cli`` is a group of the plugin's own; its commands join ``progface`` when the command
    name given is not a core one (never for ``--help`` or ``--version``), and ``progface
    plugins`` lists them. A name that is taken (a core command such as ``bench``, or another
    plugin's command) fails the plugin: it is reported and contributes nothing."""
