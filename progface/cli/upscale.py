"""``progface upscale FOLDER -o OUT``: super-resolve a folder of faces."""

from __future__ import annotations

import sys

import click

from progface.cli.errors import friendly_errors
from progface.cli.options import batch_size_option, crop_option, device_option, precision_option


@click.command()
@click.argument("folder", type=click.Path(path_type=str))
@click.option("-o", "--out", required=True, type=click.Path(path_type=str), help="Output folder.")
@click.option(
    "--method",
    help="Method name (`progface models` lists them) [default: the registered upscale "
    "default, ours: the shipped progressive generator].",
)
@click.option("--weights", type=click.Path(path_type=str), help="Weight file for the method.")
@crop_option("center")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@batch_size_option()
@device_option()
@precision_option("auto", "The network runs folded for inference at this precision; auto: "
                  "bf16 where the device computes it natively (within 0.002 dB of fp32 on val), "
                  "else fp32.")  # fmt: skip
@friendly_errors
def upscale(folder, out, method, weights, crop, overwrite, batch_size, device, precision):
    """Super-resolve every face image in FOLDER to 128x128 (inputs are brought to 16x16 first)."""
    from progface.jobs.upscale import upscale_folder

    manifest = upscale_folder(
        folder, out, method=method, crop=crop, weights=weights,
        overwrite=overwrite, device=device, batch_size=batch_size, precision=precision,
        progress=sys.stderr.isatty() or None,
    )  # fmt: skip
    for entry in manifest["files"]:
        if entry["status"] == "skipped":
            click.echo(f"skipped {entry['input']}: {entry['reason']}", err=True)
    if manifest["counts"].get("kept"):
        click.echo(f"kept {manifest['counts']['kept']} input(s) whose outputs exist in {out} "
                   "(not replaced; pass --overwrite to replace them)", err=True)  # fmt: skip
    counts = ", ".join(f"{n} {s}" for s, n in sorted(manifest["counts"].items()))
    click.echo(f"{manifest['method']}: {counts}; manifest: {manifest['manifest']}")
