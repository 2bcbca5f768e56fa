"""``progface bench``: compare methods on a folder of faces."""

from __future__ import annotations

import sys

import click

from progface.cli.errors import friendly_errors
from progface.cli.options import (
    NAME_VALUE,
    NAMES,
    batch_size_option,
    crop_option,
    device_option,
    precision_option,
    runtime_option,
)


@click.command()
@click.option(
    "--methods",
    type=NAMES,
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
@click.option("--metrics", type=NAMES, default="psnr,ssim,ms-ssim", show_default=True)
@click.option(
    "--weights",
    "weights",
    type=NAME_VALUE,
    multiple=True,
    metavar="NAME=PATH",
    help="Weight file for a method (repeatable).",
)
@crop_option("none")
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N faces.")
@batch_size_option()
@device_option()
@precision_option("fp32", "Networks run folded for inference at this precision (fp32: the "
                  "reference's math to 1e-6; auto: bf16 where native).")  # fmt: skip
@click.option("--table3", type=click.Choice(["aligned", "unaligned"]),
              help="Print the paper's Table 3 layout, its figures for this test set beside.")  # fmt: skip
@click.option("--ablation", multiple=True, type=click.Path(path_type=str), metavar="RUN",
              help="A `progface train` run folder to bench as a Table 2 row (repeatable).")  # fmt: skip
@runtime_option()
@click.option("--report", type=click.Choice(["html"]),
              help="Also write OUT/report.html: one self-contained page with the table, metric "
              "box plots and the faces that gain most and least over bicubic.")  # fmt: skip
@friendly_errors
def bench(methods, data, protocol, out, metrics, weights, crop, limit, batch_size, device,
          precision, table3, ablation, runtime, report):  # fmt: skip
    """Compare methods on a folder of faces: Markdown table, results.csv, summary.json, figure."""
    from progface import plugins
    from progface.jobs.bench import run_bench
    from progface.jobs.bench_ablation import ablation_rows
    from progface.jobs.bench_tables import table2_markdown, table3_markdown

    if methods is None:
        methods = () if ablation else tuple(plugins.defaults("methods", "bench"))
    if not methods and not ablation:
        raise click.UsageError("give --methods and/or --ablation")
    pairs = dict(weights)
    if len(pairs) != len(weights):
        twice = sorted({n for n, _ in weights if sum(m == n for m, _ in weights) > 1})
        raise click.BadParameter(
            f"more than one file for {', '.join(twice)}", param_hint="'--weights'"
        )
    extra_rows, presets = ablation_rows(ablation) if ablation else ([], {})

    result = run_bench(
        list(methods), data, protocol=protocol, out=out, metrics=metrics, weights=pairs,
        crop=crop, limit=limit, batch_size=batch_size, device=device,
        progress=sys.stderr.isatty() or None, extra_rows=extra_rows, precision=precision,
        report=report, runtime=runtime,
    )  # fmt: skip
    for skip in result.skipped:
        click.echo(f"skipped {skip['file']}: {skip['reason']}", err=True)
    click.echo(table3_markdown(result, table3) if table3 else result.markdown())
    if ablation:
        click.echo("\n" + table2_markdown(result, presets, table3 or "aligned"))
    written = f"{out}/results.csv, {out}/summary.json, {out}/comparison.png"
    click.echo(f"\nwrote {written}" + (f", {out}/report.html" if report else ""), err=True)
