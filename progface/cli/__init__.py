"""The ``progface`` command line: the group, its table of core commands, and ``main``.

Start-up is cheap: ``progface --help`` and ``--version`` import click, pluggy and this module,
neither torch nor any plugin module. The core commands are rows of :data:`CORE_COMMANDS`
(name -> ``"module:attr"`` and the first paragraph of its help, which ``--help`` shows); a
command's module is imported when the command runs or shows its own help. A test keeps the
table's help equal to each command's.

The core commands belong to the command line itself, not to the built-in plugins: a plugin's
``register_commands`` can only run after its module is imported, and the built-in modules
import what their specs need (torch among it). Everything else a plugin can add (generators,
methods, heatmap sources, losses, metrics, datasets, recipes, face detectors) still comes from the built-ins
through the same hooks as from third-party plugins (:mod:`progface.plugins`).

Plugin commands (``register_commands``) join the group only when a command name is not a core
one, so ``progface SOMEPLUGINCMD`` works; ``progface plugins`` lists them. ``--help`` cannot
(finding them imports every plugin) and says so. A plugin that adds a core command's name or
another plugin's command name is reported and adds nothing.

One module per command group: ``errors`` (one-line errors), ``options`` (option types, each
defined once), ``inventory`` (plugins, models), ``bench``, ``upscale``, ``weights`` (dir,
import), ``export``, ``landmarks`` (distill, landmarks), ``train``.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from importlib import import_module

import click

from progface import __version__

# name -> ("module:attr", the first paragraph of the command's help)
CORE_COMMANDS: dict[str, tuple[str, str]] = {
    "bench": (
        "progface.cli.bench:bench",
        "Compare methods on a folder of faces: Markdown table, results.csv, summary.json, figure.",
    ),
    "distill": (
        "progface.cli.landmarks:distill",
        "Train the distilled FAN (321,412 parameters) from a teacher heatmap source.",
    ),
    "export": (
        "progface.cli.export:export",
        "Export a learned method as ONNX: LR [B,3,16,16] in [0,1] -> SR [B,3,128,128], dynamic B.",
    ),
    "landmarks": (
        "progface.cli.landmarks:landmarks",
        "Landmark heatmap sources: NME evaluation and heatmap figures.",
    ),
    "models": (
        "progface.cli.inventory:models",
        "List generators, methods, heatmap sources and face detectors with parameter counts and "
        "weight status.",
    ),
    "plugins": ("progface.cli.inventory:plugins_command", "List plugins and what each registered."),
    "train": (
        "progface.cli.train:train",
        "Train a recipe; runs data-parallel under torchrun (e.g. torchrun --nproc_per_node=4 -m "
        "progface train run.toml).",
    ),
    "upscale": (
        "progface.cli.upscale:upscale",
        "Super-resolve face crops and restore the faces of photos in PATH... (files, folders).",
    ),
    "weights": (
        "progface.cli.weights:weights",
        "Weight files: cache folder, import of the authors' checkpoints.",
    ),
}

EPILOG = (
    "Commands that plugins add are not listed here (that would import every plugin): "
    "`progface plugins` lists them, and `progface NAME` runs one."
)


class CoreCommands(MutableMapping):
    """The group's commands: the core table, each imported on first access, plus commands
    added later (by plugins, or ``add_command``). Iterating lists names without importing."""

    def __init__(self, table: dict[str, tuple[str, str]]) -> None:
        self.table = table
        self.loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self.loaded:
            if name not in self.table:
                raise KeyError(name)
            module, attr = self.table[name][0].split(":")
            self.loaded[name] = getattr(import_module(module), attr)
        return self.loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self.loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self.loaded[name]

    def clear(self) -> None:
        """Forget every loaded and added command (the core table stays: it is not content)."""
        self.loaded.clear()

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self.table), **self.loaded})

    def __len__(self) -> int:
        return len(self.table.keys() | self.loaded.keys())

    def __contains__(self, name: object) -> bool:
        return name in self.table or name in self.loaded


class ProgfaceGroup(click.Group):
    """A group whose core commands are imported on use and whose plugin commands are loaded
    only when a command name is not a core one."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.commands = CoreCommands(CORE_COMMANDS)
        self._plugin_commands_loaded = False

    def load_plugin_commands(self) -> None:
        """Add the commands of every plugin (once); a failing plugin is reported and adds
        none (``PROGFACE_STRICT_PLUGINS=1``: raised)."""
        if not self._plugin_commands_loaded:
            self._plugin_commands_loaded = True
            from progface import plugins

            plugins.register_commands(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            self.load_plugin_commands()
        return self.commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        if ctx.resilient_parsing:  # shell completion: offer the plugins' commands too
            self.load_plugin_commands()
        return sorted(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Like click's, but a core command not imported yet shows the table's help."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            command = self.commands.loaded.get(name)  # type: ignore[attr-defined]
            if command is None:  # a core command: its help from the table, nothing imported
                command = click.Command(name, help=CORE_COMMANDS[name][1])
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=ProgfaceGroup, epilog=EPILOG)
@click.version_option(__version__, prog_name="progface")
def cli():
    """progface: 8x face super-resolution (16x16 -> 128x128) with plugins."""


def main() -> None:
    """The console script ``progface`` and ``python -m progface``."""
    import signal

    # SIGTERM (kill, a scheduler) unwinds like Ctrl-C, so temp files are removed on the way out
    signal.signal(signal.SIGTERM, _terminate)
    cli(prog_name="progface")


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


_MOVED = {  # names this module had before the split, for plugins that import them
    "friendly_errors": "progface.cli.errors",
    "one_line": "progface.cli.errors",
    "CROPS": "progface.cli.options",
    "DEVICES": "progface.cli.options",
}


def __getattr__(name: str):
    if name in _MOVED:
        return getattr(import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def command_paths(command: click.Command, path: tuple[str, ...] = ("progface",)):
    """Every command path under ``command`` as click resolves them, lazy groups included
    (the docs' CLI reference and its test check each one is shown)."""
    yield path
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path[-1])
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from command_paths(sub, (*path, name))
