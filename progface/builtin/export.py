"""Built-in plugin: the ``export`` command (learned methods as ONNX files)."""

from __future__ import annotations

from progface.hookspecs import hookimpl


@hookimpl
def register_commands(cli):
    from progface.export_cli import export

    cli.add_command(export)
