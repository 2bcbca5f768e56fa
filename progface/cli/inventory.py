"""``progface plugins`` and ``progface models``: what is installed and registered."""

from __future__ import annotations

import json

import click

from progface.cli.errors import friendly_errors
from progface.cli.options import json_option


@click.command(name="plugins")
@json_option()
@friendly_errors
def plugins_command(as_json):
    """List plugins and what each registered."""
    from progface import plugins

    rows = plugins.plugin_summary()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        if "error" in row:
            click.echo(f"{row['name']}  [failed to load: {row['error']}]")
            continue
        if row.get("disabled"):
            click.echo(f"{row['name']}  [disabled by PROGFACE_DISABLED_PLUGINS]")
            continue
        kind = "built-in" if row["builtin"] else f"version {row['version'] or '?'}"
        click.echo(f"{row['name']}  ({kind})")
        for what, names in row["registered"].items():
            click.echo(f"  {what.replace('_', ' ')}: {', '.join(names)}")


@click.command()
@json_option()
@friendly_errors
def models(as_json):
    """List generators, methods, heatmap sources and face detectors with parameter counts and weight status."""
    from progface.jobs.inventory import model_rows

    rows = model_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'kind':<15} {'name':<16} {'parameters':>12}  {'weights':<12} description")
    for r in rows:
        params = "-" if r["parameters"] is None else f"{r['parameters']:,}"
        click.echo(
            f"{r['kind']:<15} {r['name']:<16} {params:>12}  {r['weights']:<12} {r['description']}"
        )
