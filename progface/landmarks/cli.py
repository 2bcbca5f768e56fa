"""Commands ``progface distill``, ``progface landmarks eval|show`` and ``progface weights import``."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import click

from progface.cli import DEVICES, comma_list, friendly_errors


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in comma_list(text))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}") from None


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in comma_list(text))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {text!r}") from None


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


@click.command()
@click.option("--teacher", default="landmarks", show_default=True, help="Teacher heatmap source.")
@click.option("--teacher-weights", type=click.Path(path_type=str), help="Teacher weight file.")
@click.option(
    "--train", "train_dirs", multiple=True, required=True, type=click.Path(path_type=str),
    help="Folder of faces (with landmarks68.csv for the landmarks teacher); repeatable.",
)  # fmt: skip
@click.option("--val", "val_dir", type=click.Path(path_type=str), help="Labelled faces for NME.")
@click.option(
    "--report", "report_dirs", multiple=True, type=click.Path(path_type=str),
    help="More labelled folders evaluated with --val and logged, never used to select; repeatable.",
)  # fmt: skip
@click.option("--out", required=True, type=click.Path(path_type=str), help="Run folder.")
@click.option("--iterations", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True)
@click.option("--sizes", default="64,128", show_default=True, help="Training resolutions.")
@click.option("--size-probs", default="0.75,0.25", show_default=True, help="Their probabilities.")
@click.option("--sigma", type=float, default=1.5, show_default=True, help="Gaussian px at 64 px.")
@click.option("--hint-weight", type=float, default=0.0, show_default=True, help="FitNets hint.")
@click.option("--no-augment", is_flag=True, help="No flip/rotation/zoom/shift.")
@click.option("--lr-decay-at", type=click.IntRange(min=0), default=0, help="Iteration of lr x0.1.")
@click.option("--fg-weight", type=float, default=0.0, show_default=True,
              help="Warm-up weight of pixels near landmarks (0: plain MSE throughout).")  # fmt: skip
@click.option("--fg-until", type=click.IntRange(min=0), default=0, show_default=True,
              help="Iterations of the weighted warm-up.")  # fmt: skip
@click.option("--val-every", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--val-limit", type=click.IntRange(min=1), default=300, show_default=True)
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=250, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--threads", type=click.IntRange(min=0), default=0, help="torch threads (0: default)."
)
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in --out.")
@friendly_errors
def distill(teacher, teacher_weights, train_dirs, val_dir, report_dirs, out, iterations,
            batch_size, lr, sizes, size_probs, sigma, hint_weight, no_augment, lr_decay_at,
            fg_weight, fg_until, val_every, val_limit, checkpoint_every, seed, threads, device,
            resume):  # fmt: skip
    """Train the distilled FAN (321,412 parameters) from a teacher heatmap source.

    The student regresses the teacher's heatmaps with MSE (Adam, lr 1e-4, batch 16, as the
    authors coded it), on augmented faces at the given resolutions. Writes OUT/metrics.jsonl,
    checkpoints, OUT/best.safetensors (best validation NME) and OUT/last.safetensors.
    """
    import torch

    from progface.landmarks.data import load_landmark_faces
    from progface.runtime import pick_device
    from progface.train.distill import DistillOptions, DistillRecipe
    from progface.train.distill_run import run_distillation

    if threads:
        torch.set_num_threads(threads)
    dev = pick_device(device)
    sizes_t, probs_t = _ints(sizes), _floats(size_probs)
    if len(sizes_t) != len(probs_t):
        raise click.BadParameter("--sizes and --size-probs need the same number of values")
    augment = {} if not no_augment else {"flip": False, "max_angle_deg": 0.0, "max_scale": 0.0, "max_shift": 0.0}  # fmt: skip
    options = DistillOptions(
        teacher=teacher, iterations=iterations, lr=lr, batch_size=batch_size, sizes=sizes_t,
        size_probs=probs_t, sigma=sigma, hint_weight=hint_weight, lr_decay_at=lr_decay_at,
        fg_weight=fg_weight, fg_until=fg_until, seed=seed, **augment,
    )  # fmt: skip
    if teacher == "landmarks":
        from progface.landmarks.sources import LandmarkHeatmaps

        source = LandmarkHeatmaps(sigma=sigma)
        labels = True
    else:
        source = build_source(teacher, teacher_weights, dev)
        labels = False
    click.echo(f"loading faces from {', '.join(train_dirs)}", err=True)
    train = load_landmark_faces(train_dirs, require_labels=labels)
    val = load_landmark_faces([val_dir], limit=val_limit) if val_dir else None
    report = {Path(d).name: load_landmark_faces([d]) for d in report_dirs}
    click.echo(f"{len(train)} training faces; {len(val) if val else 0} validation faces", err=True)
    recipe = DistillRecipe(options, source, device=dev)
    run = run_distillation(
        recipe, train, val, out, val_every=val_every, checkpoint_every=checkpoint_every,
        report=report, resume=resume, progress=sys.stderr.isatty() or None,
    )  # fmt: skip
    click.echo(f"wrote {run}/best.safetensors and {run}/last.safetensors")


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
@click.option("--sizes", default="64,128", show_default=True, help="Working resolutions.")
@click.option(
    "--out", type=click.Path(path_type=str), help="Folder for per_image.csv, summary.json."
)
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N faces.")
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@friendly_errors
def eval_command(source, data, weights, sizes, out, limit, device):
    """NME of a heatmap source against labelled landmarks (landmarks68.csv), normalised by the
    image size (as the paper's Table 1) and by the inter-ocular distance, at each size."""
    from progface.landmarks.evaluate import landmark_errors
    from progface.runtime import pick_device

    dev = pick_device(device)
    faces = _load_faces(data, limit)
    src = build_source(source, weights, dev)
    errors = landmark_errors(src, faces.float_images().to(dev), faces.points, _ints(sizes))
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
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".per_image.csv.tmp"
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "label_source", "size", "nme_size_pct", "nme_inter_ocular_pct"])
        for size, e in errors.items():
            for i, name in enumerate(faces.names):
                writer.writerow([name, faces.sources[i], size, f"{100 * float(e['size'][i]):.4f}",
                                 f"{100 * float(e['inter_ocular'][i]):.4f}"])  # fmt: skip
    os.replace(tmp, out / "per_image.csv")
    tmp = out / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out / "summary.json")


@landmarks.command(name="show")
@click.option("--source", required=True, help="Heatmap source name.")
@click.option("--data", required=True, type=click.Path(path_type=str), help="Folder of faces.")
@click.option("--out", required=True, type=click.Path(path_type=str), help="PNG to write.")
@click.option("--weights", type=click.Path(path_type=str), help="Weight file for the source.")
@click.option("--size", type=click.IntRange(min=8), default=128, show_default=True,
              help="Resolution the source runs at.")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@friendly_errors
def show(source, data, out, weights, size, limit, device):
    """Figure of face | channel-max heatmap | landmarks (red: predicted, green: labels)."""
    import torch

    from progface.figures import save_atomic
    from progface.landmarks.evaluate import predict_landmarks, resize_faces
    from progface.landmarks.figure import heatmap_figure
    from progface.runtime import pick_device

    dev = pick_device(device)
    faces = _load_faces(data, limit)
    src = build_source(source, weights, dev)
    images = faces.float_images().to(dev)
    with torch.no_grad():
        heatmaps = src(resize_faces(images, size))
    pred = predict_landmarks(src, images, size)
    fig = heatmap_figure(images.cpu(), heatmaps.cpu(), pred.cpu(), faces.points)
    save_atomic(fig, Path(out))
    click.echo(f"wrote {out}")


# --- progface weights import -----------------------------------------------------------------


def _import_fan4(src, dst):
    from progface.landmarks.weights_io import import_fan4

    return import_fan4(src, dst)


def _import_fan_distilled(src, dst):
    from progface.landmarks.weights_io import import_fan_distilled

    return import_fan_distilled(src, dst)


IMPORTERS = {"fan-distilled": _import_fan_distilled, "fan": _import_fan4}


@click.command(name="import")
@click.argument("kind", type=click.Choice(sorted(IMPORTERS)))
@click.argument("src", type=click.Path(path_type=str))
@click.argument("dst", type=click.Path(path_type=str))
@friendly_errors
def import_weights(kind, src, dst):
    """Convert a third-party checkpoint SRC to safetensors DST, executing no pickled code.

    fan-distilled: the Progressive Face SR authors' compressed_model_011000.pth (a pickled
    module); fan: face-alignment's 2DFAN4 .pth.tar state dict or TorchScript .zip.
    """
    path = IMPORTERS[kind](src, dst)
    click.echo(f"wrote {path}")
