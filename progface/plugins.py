"""The plugin manager: built-ins and entry points (group ``progface``) through the same hooks.

A third-party plugin that fails to import or register (a hook raises, or a name it registers is
taken, e.g. ``bicubic``) is reported once on stderr and contributes nothing: not what it
registered before failing, not its commands;
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
from progface.registry import SPEC_KINDS, DuplicateNameError, Registry

DEFAULT_PLUGINS = (  # the paper's method first: it leads the default bench table
    "progface.builtin.paper",
    "progface.builtin.classical",
    "progface.builtin.metrics",
    "progface.builtin.datasets",
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
    failures[name] = f"{type(err).__name__}: {' '.join(str(err).split())}"
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
    """All registries. Each plugin's hooks register into a staging list first; a plugin whose
    hook raises, or whose names clash with an earlier plugin's, contributes nothing and is
    reported (built-ins first, so a plugin cannot take over a built-in name)."""
    global _registries
    if _registries is None:
        load_plugins()
        staged: dict[str, list] = {}
        broken: set[str] = set()
        for kind in SPEC_KINDS:
            for impl in getattr(pm.hook, f"register_{kind}").get_hookimpls():
                if impl.plugin_name not in broken:
                    _stage(impl, kind, staged.setdefault(impl.plugin_name, []), broken)
        regs = {kind: Registry(kind) for kind in SPEC_KINDS}
        for name in sorted(staged, key=lambda n: n not in DEFAULT_PLUGINS):  # stable
            if name not in broken:
                _commit(name, staged[name], regs)
        _registries = regs
    return _registries


def _stage(impl: pluggy.HookImpl, kind: str, into: list, broken: set[str]) -> None:
    def register(spec):
        if not isinstance(spec, SPEC_KINDS[kind]):
            raise TypeError(f"register_{kind} expects {SPEC_KINDS[kind].__name__}, got {spec!r}")
        into.append((kind, replace(spec, plugin=impl.plugin_name)))

    try:
        impl.function(register=register)
    except Exception as err:
        if impl.plugin_name in DEFAULT_PLUGINS:
            raise
        broken.add(impl.plugin_name)
        _fail(impl.plugin_name, err)


def _commit(name: str, specs: list, regs: dict[str, Registry]) -> None:
    """Add one plugin's specs, all or none."""
    added = []
    try:
        for kind, spec in specs:
            regs[kind].add(spec)
            added.append((kind, spec))
    except DuplicateNameError as err:
        for kind, spec in added:
            regs[kind].discard(spec)
        if name in DEFAULT_PLUGINS:
            raise
        _fail(name, err)


def register_commands(cli) -> None:
    """Let every plugin add commands; a failing hook is reported and adds none."""
    load_plugins()
    for impl in pm.hook.register_commands.get_hookimpls():
        before = dict(cli.commands)
        try:
            impl.function(cli=cli)
        except Exception as err:
            if impl.plugin_name in DEFAULT_PLUGINS:
                raise
            cli.commands.clear()
            cli.commands.update(before)
            _fail(impl.plugin_name, err)


def get(kind: str, name: str):
    """The spec registered under ``name`` (``kind``: methods, metrics, ...)."""
    return registries()[kind].get(name)


def default_methods(job: str) -> list[str]:
    """Methods registered as the default of ``job`` ("upscale" or "bench"), built-ins first."""
    return [spec.name for spec in registries()["methods"] if job in spec.default_for]


def reset() -> None:
    """Forget computed registries (after registering a plugin in-process)."""
    global _registries
    _registries = None


def plugin_summary() -> list[dict]:
    """One dict per plugin: name, version, hooks, and the names it registered."""
    regs = registries()
    rows = []
    for name, plugin in pm.list_name_plugin():
        if name in failures:  # listed once, with its error
            continue
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
