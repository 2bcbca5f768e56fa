"""``progface weights dir|import``: the cache folder and the import of the authors' files."""

from __future__ import annotations

from pathlib import Path

import click

from progface.cli.errors import friendly_errors


@click.group()
def weights():
    """Weight files: cache folder, import of the authors' checkpoints."""


@weights.command(name="dir")
def weights_dir():
    """Print the weights cache folder ($PROGFACE_HOME or ~/.cache/progface)."""
    from progface.weights import cache_dir

    click.echo(cache_dir())


@weights.command(name="import")
@click.argument("src", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--out", "dst", type=click.Path(dir_okay=False, path_type=Path),
              help="Output .safetensors (default: beside SRC).")  # fmt: skip
@click.option("--kind", default="auto", show_default=True,
              help="What SRC is: auto, or one of the importers (generator, ...).")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@friendly_errors
def import_command(src, dst, kind, overwrite):
    """Convert an authors' checkpoint to safetensors without executing pickle code."""
    from progface.weights import load_safetensors
    from progface.weights.importers import import_weights

    path = import_weights(src, dst, kind, overwrite=overwrite)
    tensors, config = load_safetensors(path)
    click.echo(f"wrote {path} ({len(tensors)} tensors; {config.get('architecture', kind)})")
