"""Built-in plugin: the ``export`` command (learned methods as ONNX files)."""

from __future__ import annotations

from progface.hookspecs import hookimpl


@hookimpl
def register_commands(cli):
    from progface.cli.export import export

    cli.add_command(export)
