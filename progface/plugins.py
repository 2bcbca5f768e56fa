"""The plugin manager: built-ins and entry points (group ``progface``) through the same hooks.

A third-party plugin that fails to import or register (a hook raises, a name it registers is
taken, e.g. ``bicubic``, or a command it adds has the name of a core command or of another
plugin's command) is reported once on stderr and contributes nothing: not what it registered
before failing, not its commands. ``PROGFACE_STRICT_PLUGINS=1`` makes that fatal.
``PROGFACE_LOAD_PLUGINS=a,b`` loads only the named third-party plugins (empty: none);
``PROGFACE_DISABLED_PLUGINS=a,b`` loads none of the named plugins, built-ins included (e.g.
``progface.builtin.baselines``: then ``vdsr`` is unknown).

Importing this module imports neither torch nor any plugin; :func:`load_plugins` does, on the
first question about the registries or about plugin commands.
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
    "progface.builtin.faces",
)
ENTRY_POINT_GROUP = "progface"

pm = pluggy.PluginManager("progface")
pm.add_hookspecs(hookspecs)
_loaded = False
_registries: dict[str, Registry] | None = None
failures: dict[str, str] = {}  # plugin name -> error, for `progface plugins`
versions: dict[str, str] = {}  # entry-point plugin name -> distribution version
disabled: list[str] = []  # plugins named by PROGFACE_DISABLED_PLUGINS that exist
_commands: dict[str, dict] = {}  # plugin -> {name: click command} it adds (working plugins)


def _fail(name: str, err: BaseException) -> None:
    """Report a failed plugin once (``PROGFACE_STRICT_PLUGINS=1``: raise)."""
    if os.environ.get("PROGFACE_STRICT_PLUGINS") == "1":
        raise err
    if name in failures:
        return
    failures[name] = f"{type(err).__name__}: {' '.join(str(err).split())}"
    print(f"progface: plugin {name!r} skipped: {failures[name]}", file=sys.stderr)


def _env_names(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    return None if value is None else {n.strip() for n in value.split(",") if n.strip()}


def load_plugins() -> None:
    """Register built-ins, then installed entry points (once), minus disabled ones."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    off = _env_names("PROGFACE_DISABLED_PLUGINS") or set()
    for name in sorted(off):
        pm.set_blocked(name)  # also refuses in-process registration under that name
    for module in DEFAULT_PLUGINS:
        if module in off:
            disabled.append(module)
        else:
            pm.register(import_module(module), name=module)
    wanted = _env_names("PROGFACE_LOAD_PLUGINS")
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in off:
            if ep.name not in disabled:
                disabled.append(ep.name)
            continue
        if (wanted is not None and ep.name not in wanted) or pm.has_plugin(ep.name):
            continue
        try:
            pm.register(ep.load(), name=ep.name)
            versions[ep.name] = ep.dist.version if ep.dist else ""
        except Exception as err:  # a broken plugin must not break the others
            _fail(ep.name, err)
    if off - set(disabled):
        print(f"progface: PROGFACE_DISABLED_PLUGINS names no installed plugin: "
              f"{', '.join(sorted(off - set(disabled)))}", file=sys.stderr)  # fmt: skip
    pm.check_pending()


def registries() -> dict[str, Registry]:
    """All registries. Each plugin's hooks register into a staging list first; a plugin whose
    hook raises, or whose names clash with an earlier plugin's, contributes nothing and is
    reported (built-ins first, so a plugin cannot take over a built-in name). The commands
    hooks run here too, into groups of their own (:func:`_stage_commands`), so that a plugin
    whose commands fail contributes no specs either, whichever command runs."""
    global _registries, _commands
    if _registries is None:
        load_plugins()
        staged: dict[str, list] = {}
        broken: set[str] = set()
        for kind in SPEC_KINDS:
            for impl in getattr(pm.hook, f"register_{kind}").get_hookimpls():
                if impl.plugin_name not in broken and impl.plugin_name not in failures:
                    _stage(impl, kind, staged.setdefault(impl.plugin_name, []), broken)
        regs = {kind: Registry(kind) for kind in SPEC_KINDS}
        for name in sorted(staged, key=lambda n: n not in DEFAULT_PLUGINS):  # stable
            if name not in broken:
                _commit(name, staged[name], regs)
        _commands = _stage_commands(regs)
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


def _stage_commands(regs: dict[str, Registry]) -> dict[str, dict]:
    """Run every working plugin's ``register_commands`` on a group of its own. A plugin whose
    hook raises, or that adds a core command's name or an earlier plugin's command name, is
    reported and contributes nothing (its specs are taken out of ``regs``)."""
    import click

    from progface.cli import CORE_COMMANDS  # the table only: imports no command

    staged: dict[str, dict] = {}
    owners: dict[str, str] = {}  # command name -> plugin
    for impl in pm.hook.register_commands.get_hookimpls():
        name = impl.plugin_name
        if name in failures:
            continue
        group = click.Group("progface")
        try:
            impl.function(cli=group)
            for command in group.commands:
                if command in CORE_COMMANDS:
                    raise DuplicateNameError(
                        f"command {command!r} is a core progface command; plugin {name!r} "
                        "cannot replace it"
                    )
                if command in owners:
                    raise DuplicateNameError(
                        f"command {command!r} is registered by both plugin {owners[command]!r} "
                        f"and plugin {name!r}"
                    )
        except Exception as err:
            if name in DEFAULT_PLUGINS:
                raise
            _fail(name, err)
            _discard(name, regs)  # what it registered before contributes nothing
            continue
        owners.update(dict.fromkeys(group.commands, name))
        staged[name] = dict(group.commands)
    return {name: commands for name, commands in staged.items() if name not in failures}


def _discard(name: str, regs: dict[str, Registry]) -> None:
    for registry in regs.values():
        for spec in [s for s in registry if s.plugin == name]:
            registry.discard(spec)


def register_commands(cli) -> None:
    """Add the commands of every working plugin to the click group ``cli`` (names that
    ``cli`` has already are refused: the core commands are checked when they are staged)."""
    registries()
    for name, commands in _commands.items():
        for command_name, command in commands.items():
            if cli.commands.get(command_name, command) is not command:
                _fail(name, DuplicateNameError(f"command {command_name!r} of plugin {name!r} "
                                               f"is taken in group {cli.name!r}"))  # fmt: skip
                _discard(name, registries())
                break
        else:
            for command_name, command in commands.items():
                cli.add_command(command, command_name)


def get(kind: str, name: str):
    """The spec registered under ``name`` (``kind``: methods, metrics, ...)."""
    return registries()[kind].get(name)


def defaults(kind: str, job: str) -> list[str]:
    """Names of ``kind`` (a registry with ``default_for``: methods, face_detectors) registered
    as the default of ``job`` ("upscale", "bench"), built-ins first."""
    return [spec.name for spec in registries()[kind] if job in spec.default_for]


def reset() -> None:
    """Forget computed registries (after registering a plugin in-process)."""
    global _registries
    _registries = None


def plugin_summary() -> list[dict]:
    """One dict per plugin: name, version, hooks, and the names it registered (commands
    included); failed plugins with their error, disabled ones with ``"disabled": True``."""
    regs = registries()
    rows = []
    for name, plugin in pm.list_name_plugin():
        if name in failures or plugin is None:  # listed once, with its error; None: blocked
            continue
        registered = {kind: [s.name for s in reg if s.plugin == name] for kind, reg in regs.items()}
        registered["commands"] = sorted(_commands.get(name, ()))
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
    rows += [{"name": n, "disabled": True} for n in disabled]
    return rows
