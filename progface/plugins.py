"""The plugin manager: built-ins and entry points (group ``progface``) through the same hooks.

A third-party plugin that fails to import or register is reported once on stderr and skipped;
``PROGFACE_STRICT_PLUGINS=1`` makes that fatal. ``PROGFACE_LOAD_PLUGINS=a,b`` loads only the
named third-party plugins (empty: none).
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from importlib import import_module, metadata

import pluggy

from progface import hookspecs
from progface.registry import SPEC_KINDS, Registry

DEFAULT_PLUGINS = (
    "progface.builtin.classical",
    "progface.builtin.metrics",
    "progface.builtin.datasets",
    "progface.builtin.paper",
    "progface.builtin.landmarks",
    "progface.builtin.baselines",
    "progface.builtin.export",
)
ENTRY_POINT_GROUP = "progface"

pm = pluggy.PluginManager("progface")
pm.add_hookspecs(hookspecs)
_loaded = False
_registries: dict[str, Registry] | None = None
failures: dict[str, str] = {}  # plugin name -> error, for `progface plugins`
versions: dict[str, str] = {}  # entry-point plugin name -> distribution version


def _fail(name: str, err: BaseException) -> None:
    if os.environ.get("PROGFACE_STRICT_PLUGINS") == "1":
        raise err
    failures[name] = f"{type(err).__name__}: {err}"
    print(f"progface: plugin {name!r} skipped: {failures[name]}", file=sys.stderr)


def load_plugins() -> None:
    """Register built-ins, then installed entry points (once)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in DEFAULT_PLUGINS:
        pm.register(import_module(module), name=module)
    allow = os.environ.get("PROGFACE_LOAD_PLUGINS")
    wanted = None if allow is None else {n.strip() for n in allow.split(",") if n.strip()}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if (wanted is not None and ep.name not in wanted) or pm.has_plugin(ep.name):
            continue
        try:
            pm.register(ep.load(), name=ep.name)
            versions[ep.name] = ep.dist.version if ep.dist else ""
        except Exception as err:  # a broken plugin must not break the others
            _fail(ep.name, err)
    pm.check_pending()


def registries() -> dict[str, Registry]:
    """All registries, filled by calling every plugin's hooks one plugin at a time."""
    global _registries
    if _registries is None:
        load_plugins()
        regs = {kind: Registry(kind) for kind in SPEC_KINDS}
        for kind, registry in regs.items():
            for impl in getattr(pm.hook, f"register_{kind}").get_hookimpls():
                _call_register(impl, kind, registry)
        _registries = regs
    return _registries


def _call_register(impl: pluggy.HookImpl, kind: str, registry: Registry) -> None:
    def register(spec):
        if not isinstance(spec, SPEC_KINDS[kind]):
            raise TypeError(f"register_{kind} expects {SPEC_KINDS[kind].__name__}, got {spec!r}")
        registry.add(replace(spec, plugin=impl.plugin_name))

    is_builtin = impl.plugin_name in DEFAULT_PLUGINS
    try:
        impl.function(register=register)
    except Exception as err:
        if is_builtin or type(err).__name__ == "DuplicateNameError":
            raise
        _fail(impl.plugin_name, err)


def get(kind: str, name: str):
    """The spec registered under ``name`` (``kind``: methods, metrics, ...)."""
    return registries()[kind].get(name)


def reset() -> None:
    """Forget computed registries (after registering a plugin in-process)."""
    global _registries
    _registries = None


def plugin_summary() -> list[dict]:
    """One dict per plugin: name, version, hooks, and the names it registered."""
    regs = registries()
    rows = []
    for name, plugin in pm.list_name_plugin():
        registered = {kind: [s.name for s in reg if s.plugin == name] for kind, reg in regs.items()}
        rows.append(
            {
                "name": name,
                "builtin": name in DEFAULT_PLUGINS,
                "version": versions.get(name),
                "hooks": sorted(h.name for h in pm.get_hookcallers(plugin) or []),
                "registered": {k: v for k, v in registered.items() if v},
            }
        )
    rows += [{"name": n, "error": e} for n, e in failures.items()]
    return rows
