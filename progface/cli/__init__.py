"""The ``progface`` command line. Plugins may add commands through ``register_commands``."""

from __future__ import annotations

import functools
import json
import os
import sys

import click

from progface import __version__, plugins
from progface.jobs.runtime import PRECISIONS

CROPS = click.Choice(["celeba", "center", "none"])
DEVICES = click.Choice(["auto", "cpu", "cuda"])


def friendly_errors(fn):
    """Turn every error of a command into one line naming the file or option and the problem.

    ``PROGFACE_DEBUG=1`` keeps the full traceback instead.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except Exception as err:
            if os.environ.get("PROGFACE_DEBUG") == "1":
                raise
            raise click.ClickException(one_line(err)) from err

    return wrapper


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line; OS errors as ``FILE: problem``; errors that are not
    the user's (bugs) name their type and how to see the traceback."""
    from progface.data.errors import ImageError
    from progface.registry import UnknownNameError
    from progface.weights import WeightsError

    if isinstance(err, OSError) and err.strerror:
        where = f"{err.filename}: " if err.filename is not None else ""
        text = f"{where}{err.strerror[0].lower()}{err.strerror[1:]}"
    else:
        text = " ".join(str(err).split()) or type(err).__name__
    # ImportError: a missing optional extra; its message says what to install
    known = (UnknownNameError, ImageError, WeightsError, ValueError, RuntimeError, OSError,
             ImportError)  # fmt: skip
    if not isinstance(err, known):
        text = f"{type(err).__name__}: {text} (set PROGFACE_DEBUG=1 for the traceback)"
    return text


def comma_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@click.group()
@click.version_option(__version__, prog_name="progface")
def cli():
    """progface: 8x face super-resolution (16x16 -> 128x128) with plugins."""


@cli.command(name="plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@friendly_errors
def plugins_command(as_json):
    """List plugins and what each registered."""
    rows = plugins.plugin_summary()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        if "error" in row:
            click.echo(f"{row['name']}  [failed to load: {row['error']}]")
            continue
        kind = "built-in" if row["builtin"] else f"version {row['version'] or '?'}"
        click.echo(f"{row['name']}  ({kind})")
        for what, names in row["registered"].items():
            click.echo(f"  {what.replace('_', ' ')}: {', '.join(names)}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@friendly_errors
def models(as_json):
    """List generators, methods and heatmap sources with parameter counts and weight status."""
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


@cli.command()
@click.option(
    "--methods",
    default=None,
    help="Comma-separated method names, e.g. ours,vdsr,urdgn,bicubic,bilinear "
    "(default: the methods registered as bench defaults, ours,bicubic; none with --ablation).",
)
@click.option("--data", required=True, type=click.Path(path_type=str), help="Folder of HR faces.")
@click.option(
    "--protocol",
    type=click.Choice(["standard", "pfsr"]),
    default="standard",
    show_default=True,
    help="standard: per-image metrics; pfsr: the authors' eval.py.",
)
@click.option(
    "--out",
    type=click.Path(path_type=str),
    default="progface-bench",
    show_default=True,
    help="Folder for results.csv, summary.json and comparison.png.",
)
@click.option("--metrics", default="psnr,ssim,ms-ssim", show_default=True)
@click.option(
    "--weights",
    "weights",
    multiple=True,
    metavar="NAME=PATH",
    help="Weight file for a method (repeatable).",
)
@click.option("--crop", type=CROPS, default="none", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N faces.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="Networks run folded for inference at this precision (fp32: the reference's "
              "math to 1e-6; auto: bf16 where native).")  # fmt: skip
@click.option("--table3", type=click.Choice(["aligned", "unaligned"]),
              help="Print the paper's Table 3 layout, its figures for this test set beside.")  # fmt: skip
@click.option("--ablation", multiple=True, type=click.Path(path_type=str), metavar="RUN",
              help="A `progface train` run folder to bench as a Table 2 row (repeatable).")  # fmt: skip
@friendly_errors
def bench(methods, data, protocol, out, metrics, weights, crop, limit, batch_size, device,
          precision, table3, ablation):  # fmt: skip
    """Compare methods on a folder of faces: Markdown table, results.csv, summary.json, figure."""
    from progface.jobs.bench import run_bench
    from progface.jobs.bench_ablation import ablation_rows
    from progface.jobs.bench_tables import table2_markdown, table3_markdown

    if methods is None:
        methods = "" if ablation else ",".join(plugins.default_methods("bench"))
    if not comma_list(methods) and not ablation:
        raise click.UsageError("give --methods and/or --ablation")
    extra_rows, presets = ablation_rows(ablation) if ablation else ([], {})

    pairs = dict(w.split("=", 1) for w in weights if "=" in w)
    if len(pairs) != len(weights):
        raise click.BadParameter("expected NAME=PATH", param_hint="--weights")
    result = run_bench(
        comma_list(methods), data, protocol=protocol, out=out, metrics=tuple(comma_list(metrics)),
        weights=pairs, crop=crop, limit=limit, batch_size=batch_size, device=device,
        progress=sys.stderr.isatty() or None, extra_rows=extra_rows, precision=precision,
    )  # fmt: skip
    for skip in result.skipped:
        click.echo(f"skipped {skip['file']}: {skip['reason']}", err=True)
    click.echo(table3_markdown(result, table3) if table3 else result.markdown())
    if ablation:
        click.echo("\n" + table2_markdown(result, presets, table3 or "aligned"))
    click.echo(f"\nwrote {out}/results.csv, {out}/summary.json, {out}/comparison.png", err=True)


@cli.command()
@click.argument("folder", type=click.Path(path_type=str))
@click.option("-o", "--out", required=True, type=click.Path(path_type=str), help="Output folder.")
@click.option(
    "--method",
    help="Method name (`progface models` lists them) [default: the registered upscale "
    "default, ours: the shipped progressive generator].",
)
@click.option("--weights", type=click.Path(path_type=str), help="Weight file for the method.")
@click.option("--crop", type=CROPS, default="center", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
              help="The network runs folded for inference at this precision; auto: bf16 where "
              "the device computes it natively (within 0.002 dB of fp32 on val), else fp32.")  # fmt: skip
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


@cli.group()
def weights():
    """Weight files: cache folder, import of the authors' checkpoints."""


@weights.command(name="dir")
def weights_dir():
    """Print the weights cache folder ($PROGFACE_HOME or ~/.cache/progface)."""
    from progface.weights import cache_dir

    click.echo(cache_dir())


def main() -> None:
    import signal

    # SIGTERM (kill, a scheduler) unwinds like Ctrl-C, so temp files are removed on the way out
    signal.signal(signal.SIGTERM, _terminate)
    cli(prog_name="progface")


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


plugins.register_commands(cli)
