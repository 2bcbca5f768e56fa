"""Commands ``progface distill`` and ``progface landmarks eval|show``.

The importers of the distilled FAN and FAN-4 live in :data:`progface.weights.importers.IMPORTERS`
(``progface weights import SRC --kind fan-distilled|fan``)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import click

from progface.cli.errors import friendly_errors
from progface.cli.options import DEVICES, FLOATS, INTS, device_option


def build_source(name: str, weights: str | None, device: str):
    """A registered heatmap source by name (``weights``: a file for sources that take one)."""
    from progface import plugins

    spec = plugins.get("heatmap_sources", name)
    if spec.weights is not None:
        return spec.build(weights=weights, device=device)
    if weights:
        raise click.BadParameter(
            f"heatmap source {name!r} takes no weights", param_hint="--weights"
        )
    return spec.build(device=device)


# --- progface distill ------------------------------------------------------------------------


# option name -> config key; every option defaults to None, i.e. "keep the config's value"
DISTILL_KEYS = {
    "teacher": "options.teacher", "teacher_weights": "options.teacher_weights",
    "val_dir": "data.val", "out": "out", "iterations": "options.iterations",
    "batch_size": "loop.batch_size", "lr": "options.lr", "sigma": "options.sigma",
    "hint_weight": "options.hint_weight", "lr_decay_at": "options.lr_decay_at",
    "fg_weight": "options.fg_weight", "fg_until": "options.fg_until",
    "val_every": "loop.val_every", "val_limit": "data.val_limit",
    "checkpoint_every": "loop.checkpoint_every", "seed": "seed", "threads": "loop.threads",
    "device": "loop.device",
}  # fmt: skip


@click.command()
@click.option("--teacher", help="Teacher heatmap source [landmarks].")
@click.option("--teacher-weights", type=click.Path(path_type=str), help="Teacher weight file.")
@click.option(
    "--train", "train_dirs", multiple=True, type=click.Path(path_type=str),
    help="Folder of faces (with landmarks68.csv for the landmarks teacher); repeatable.",
)  # fmt: skip
@click.option("--val", "val_dir", type=click.Path(path_type=str), help="Labelled faces for NME.")
@click.option(
    "--report", "report_dirs", multiple=True, type=click.Path(path_type=str),
    help="More labelled folders evaluated with --val and logged, never used to select; repeatable.",
)  # fmt: skip
@click.option("--out", type=click.Path(path_type=str), help="Run folder.")
@click.option("--preset", help="default, or paper (FAN-4 teacher, 64 px, no augmentation).")
@click.option("--iterations", type=click.IntRange(min=1), help="[100000]")
@click.option("--batch-size", type=click.IntRange(min=1), help="[16]")
@click.option("--lr", type=float, help="Adam learning rate [1e-4].")
@click.option("--sizes", type=INTS, help="Training resolutions [64,128].")
@click.option("--size-probs", type=FLOATS, help="Their probabilities [0.75,0.25].")
@click.option("--sigma", type=float, help="landmarks teacher: Gaussian px at 64 px [1.5].")
@click.option("--hint-weight", type=float, help="FitNets hint weight [0].")
@click.option("--no-augment", is_flag=True, help="No flip/rotation/zoom/shift.")
@click.option("--lr-decay-at", type=click.IntRange(min=0), help="Iteration of lr x0.1 [never].")
@click.option("--fg-weight", type=float, help="Warm-up weight of pixels near landmarks [0].")
@click.option("--fg-until", type=click.IntRange(min=0), help="Iterations of that warm-up [0].")
@click.option("--val-every", type=click.IntRange(min=1), help="[500]")
@click.option("--val-limit", type=click.IntRange(min=1), help="Validation faces [300].")
@click.option("--checkpoint-every", type=click.IntRange(min=1), help="[250]")
@click.option("--seed", type=int, help="[0]")
@click.option("--threads", type=click.IntRange(min=0), help="torch threads [torch's default].")
@click.option("--device", type=DEVICES, help="[auto]")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Any other config key, e.g. --set options.max_angle_deg=15.")  # fmt: skip
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@friendly_errors
def distill(train_dirs, report_dirs, preset, sizes, size_probs, no_augment, overrides, resume,
            **values):  # fmt: skip
    """Train the distilled FAN (321,412 parameters) from a teacher heatmap source.

    The student regresses the teacher's heatmaps with MSE (Adam, lr 1e-4, batch 16, as the
    authors coded it), on augmented faces at the given resolutions, on the shared training
    loop (``progface train --recipe distill`` is the same). Writes OUT/config.toml,
    OUT/metrics.jsonl (NME at each validation), checkpoints, OUT/best.safetensors (best
    validation NME), OUT/weights.safetensors (latest) and heatmap figures in OUT/samples.
    """

    from progface.train.config import load_config
    from progface.train.loop import resume_config, train

    sets = []
    for name, key in DISTILL_KEYS.items():
        if values.get(name) is not None:
            sets.append(f"{key}={json.dumps(values[name])}")
    if train_dirs:
        sets.append(f"data.train={json.dumps(','.join(train_dirs))}")
    if report_dirs:
        sets.append(f"options.report={json.dumps(list(report_dirs))}")
    if sizes is not None:
        sets.append(f"options.sizes={json.dumps(list(sizes))}")
    if size_probs is not None:
        sets.append(f"options.size_probs={json.dumps(list(size_probs))}")
    if no_augment:
        sets += ["options.flip=false", "options.max_angle_deg=0.0", "options.max_scale=0.0",
                 "options.max_shift=0.0"]  # fmt: skip
    out = values.get("out")
    if resume and out is not None:  # the run's own config.toml, on to the recipe's end
        cfg = resume_config(out, [*sets, *overrides], recipe="distill", preset=preset)
    else:
        cfg = load_config(None, [*sets, *overrides], recipe="distill", preset=preset)
    if not cfg.data.train:
        raise click.UsageError("give the training faces with --train DIR (repeatable)")
    run = train(cfg, resume=resume)
    click.echo(f"run folder: {run} (best.safetensors: lowest validation NME)")


# --- progface landmarks -----------------------------------------------------------------------


@click.group()
def landmarks():
    """Landmark heatmap sources: NME evaluation and heatmap figures."""


def _load_faces(data: str, limit: int | None):
    from progface.landmarks.data import load_landmark_faces

    return load_landmark_faces([data], limit=limit)


@landmarks.command(name="eval")
@click.option(
    "--source", required=True, help="Heatmap source name (fan-distilled, fan, dlib68...)."
)
@click.option("--data", required=True, type=click.Path(path_type=str), help="Labelled faces.")
@click.option("--weights", type=click.Path(path_type=str), help="Weight file for the source.")
@click.option(
    "--sizes", type=INTS, default="64,128", show_default=True, help="Working resolutions."
)
@click.option(
    "--out", type=click.Path(path_type=str), help="Folder for per_image.csv, summary.json."
)
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N faces.")
@device_option()
@friendly_errors
def eval_command(source, data, weights, sizes, out, limit, device):
    """NME of a heatmap source against labelled landmarks (landmarks68.csv), normalised by the
    image size (as the paper's Table 1) and by the inter-ocular distance, at each size."""
    from progface.jobs.runtime import pick_device
    from progface.landmarks.evaluate import landmark_errors

    dev = pick_device(device)
    faces = _load_faces(data, limit)
    src = build_source(source, weights, dev)
    errors = landmark_errors(src, faces.float_images().to(dev), faces.points, sizes)
    summary = {
        "source": source,
        "weights": _weights_facts(weights),
        "data": str(data),
        "faces": len(faces),
        "label_sources": sorted(set(faces.sources)),
        "nme_percent": {
            str(size): {
                "size": 100 * float(e["size"].mean()),
                "inter_ocular": 100 * float(e["inter_ocular"].mean()),
                "size_median": 100 * float(e["size"].median()),
                "inter_ocular_median": 100 * float(e["inter_ocular"].median()),
            }
            for size, e in errors.items()
        },
    }
    click.echo(f"| {source} | px | NME (% of image size) | NME (% of inter-ocular) | faces |")
    click.echo("|---|---:|---:|---:|---:|")
    for size, row in summary["nme_percent"].items():
        click.echo(f"| {source} | {size} | {row['size']:.3f} | {row['inter_ocular']:.3f} | {len(faces)} |")  # fmt: skip
    if out:
        _write_eval(Path(out), faces, errors, summary)
        click.echo(f"wrote {out}/per_image.csv and {out}/summary.json", err=True)


def _weights_facts(weights: str | None) -> dict | None:
    if not weights:
        return None
    from progface.weights import sha256_of

    return {"file": os.path.basename(weights), "sha256": sha256_of(weights)}


def _write_eval(out: Path, faces, errors, summary: dict) -> None:
    from progface.io.atomic import write_atomic, write_text_atomic

    def write_csv(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "label_source", "size", "nme_size_pct",
                             "nme_inter_ocular_pct"])  # fmt: skip
            for size, e in errors.items():
                for i, name in enumerate(faces.names):
                    writer.writerow([name, faces.sources[i], size,
                                     f"{100 * float(e['size'][i]):.4f}",
                                     f"{100 * float(e['inter_ocular'][i]):.4f}"])  # fmt: skip

    write_atomic(out / "per_image.csv", write_csv)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")


@landmarks.command(name="show")
@click.option("--source", required=True, help="Heatmap source name.")
@click.option("--data", required=True, type=click.Path(path_type=str), help="Folder of faces.")
@click.option("--out", required=True, type=click.Path(path_type=str),
              help="Figure to write (.png, or .jpg for a smaller file).")  # fmt: skip
@click.option("--weights", type=click.Path(path_type=str), help="Weight file for the source.")
@click.option("--size", type=click.IntRange(min=8), default=128, show_default=True,
              help="Resolution the source runs at.")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--tile", type=click.IntRange(min=32), default=192, show_default=True,
              help="Tile size in the figure (px).")  # fmt: skip
@device_option()
@friendly_errors
def show(source, data, out, weights, size, limit, tile, device):
    """Figure of face | channel-max heatmap | landmarks (red: predicted, green: labels)."""
    import torch

    from progface.io.figures import save_atomic
    from progface.jobs.runtime import pick_device
    from progface.landmarks.evaluate import predict_landmarks, resize_faces
    from progface.landmarks.figure import heatmap_figure

    dev = pick_device(device)
    faces = _load_faces(data, limit)
    src = build_source(source, weights, dev)
    images = faces.float_images().to(dev)
    with torch.no_grad():
        heatmaps = src(resize_faces(images, size))
    pred = predict_landmarks(src, images, size)
    fig = heatmap_figure(images.cpu(), heatmaps.cpu(), pred.cpu(), faces.points, size=tile)
    out = Path(out)
    if out.suffix.lower() in (".jpg", ".jpeg"):  # smaller files for documentation
        from progface.io.atomic import write_atomic

        write_atomic(out, lambda tmp: fig.save(tmp, format="JPEG", quality=88))
    else:
        save_atomic(fig, out)
    click.echo(f"wrote {out}")
