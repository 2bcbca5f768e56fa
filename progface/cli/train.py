"""``progface train`` (any registered recipe)."""

from __future__ import annotations

from pathlib import Path

import click

from progface.cli.errors import friendly_errors


@click.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--recipe", help="Registered recipe (default: the config's, else progressive).")
@click.option("--preset", help="A preset of the recipe, e.g. paper or table2-full.")
@click.option("--out", "out", type=click.Path(path_type=Path), help="Run folder.")
@click.option("--data", type=click.Path(path_type=Path), help="Folder of HR training faces.")
@click.option("--val", type=click.Path(path_type=Path), help="Folder of HR validation faces.")
@click.option("--perceptual-weights", type=click.Path(path_type=Path),
              help="torchvision's vgg16-397923af.pth (progressive recipe).")  # fmt: skip
@click.option("--heatmap-source", help="Registered heatmap source (progressive recipe).")
@click.option("--generator", help="Registered generator to train (options.generator; e.g. with "
              "--recipe sr, which trains any of them).")  # fmt: skip
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, e.g. --set loop.batch_size=8 (repeatable).")  # fmt: skip
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@friendly_errors
def train(config, recipe, preset, out, data, val, perceptual_weights, heatmap_source,
          generator, overrides, resume):  # fmt: skip
    """Train a recipe; runs data-parallel under torchrun (e.g. torchrun --nproc_per_node=4 -m
    progface train run.toml)."""
    from progface.train.config import ConfigError, load_config
    from progface.train.loop import resume_config
    from progface.train.loop import train as run

    if resume and out is None and config is None:
        raise click.UsageError("--resume needs --out RUN (the run folder to continue)")
    sets = list(overrides)
    for key, value in (("out", out), ("data.train", data), ("data.val", val),
                       ("options.perceptual_weights", perceptual_weights),
                       ("options.heatmap_source", heatmap_source),
                       ("options.generator", generator)):  # fmt: skip
        if value is not None:
            sets.insert(0, f"{key}={_quote(str(value))}")
    try:
        if config is None and resume:  # the run's own config.toml, on to the recipe's end
            cfg = resume_config(out, sets, recipe=recipe, preset=preset)
        else:
            cfg = load_config(config, sets, recipe=recipe, preset=preset)
    except ConfigError as err:
        raise click.ClickException(str(err)) from err
    try:
        folder = run(cfg, resume=resume)
    except (FileExistsError, FileNotFoundError) as err:  # run folder / checkpoint problems
        raise click.ClickException(str(err)) from err
    click.echo(f"run folder: {folder}", err=True)


def _quote(text: str) -> str:
    import json

    return json.dumps(text)
