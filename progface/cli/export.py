"""``progface export METHOD --format onnx -o FILE``."""

from __future__ import annotations

import click

from progface.cli.errors import friendly_errors


@click.command(name="export")
@click.argument("method")
@click.option("--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True)
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False, path_type=str),
              help="File to write (refused if it exists, unless --overwrite).")  # fmt: skip
@click.option("--weights", type=click.Path(dir_okay=False, path_type=str),
              help="Weight file (default: the method's shipped or cached weights).")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace an existing file.")
@friendly_errors
def export(method, fmt, out, weights, overwrite):
    """Export a learned method as ONNX: LR [B,3,16,16] in [0,1] -> SR [B,3,128,128], dynamic B."""
    from progface.jobs.export import export_method

    try:
        facts = export_method(method, out, weights=weights, overwrite=overwrite)
    except FileExistsError as err:
        raise click.ClickException(str(err)) from err
    diff = facts["onnxruntime_max_abs_diff"]
    check = "onnxruntime not installed, not checked" if diff is None else f"{diff:.2g}"
    click.echo(
        f"wrote {facts['path']} ({facts['method']}, {facts['parameters']:,} parameters, "
        f"opset {facts['opset']}); max abs diff onnxruntime vs torch: {check}"
    )
