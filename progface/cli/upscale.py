"""``progface upscale PATH... -o OUT``: super-resolve face crops and restore faces in photos."""

from __future__ import annotations

import sys

import click

from progface.cli.errors import friendly_errors
from progface.cli.options import (
    batch_size_option,
    crop_option,
    device_option,
    precision_option,
    runtime_option,
)

HELP = """Super-resolve face crops and restore the faces of photos in PATH... (files, folders).

\b
Each image is one of two kinds (--input; the manifest records which, per
file):
- crop: an aligned face (as CelebA's). A 16x16 crop is the network's input
  as it is; a larger one is cropped (--crop), brought to 128 px and degraded
  to 16 px first: a simulation, whose PSNR against the input the manifest
  records (--simulate also writes HR | LR | bicubic | SR panels to
  OUT/simulate/); one under 16 px is enlarged to 16 with a warning. Writes
  OUT/sr/NAME.png (128x128) and OUT/compare/NAME.png (LR | bicubic | SR).
- photo: faces are detected (--detector), aligned by 5 landmarks, brought to
  16 px, restored by the method and pasted back into the photo enlarged
  --scale times (--bg-method). Writes OUT/NAME[SUFFIX].EXT and
  OUT/faces/NAME_K_lr.png, _sr.png per restored face.

\b
--input auto (the default) takes an image for a crop when its longer side is
at most 256 px and its aspect ratio at most 5:4 (square crops, CelebA's
178x218, LFW's 250x250), else for a photo: aligned datasets are small and
near-square, photos are larger or 4:3 / 3:2. --aligned and --photos force
one kind.

Nothing is written into the input folders; existing outputs are kept without --overwrite; a
file that cannot be used is reported (stderr and manifest) and the rest go on.
"""


@click.command(help=HELP)
@click.argument("paths", metavar="PATH...", nargs=-1, required=True,
                type=click.Path(path_type=str))  # fmt: skip
@click.option("-o", "--out", required=True, type=click.Path(path_type=str), help="Output folder.")
@click.option(
    "-r",
    "--recursive",
    is_flag=True,
    help="Search subfolders of folders too; the outputs mirror them (sr/a/b/x.png).",
)
@click.option(
    "--input", "kind", type=click.Choice(["auto", "crop", "photo"]), default="auto",
    show_default=True, help="What the images are (auto: by size and shape, see above).",
)  # fmt: skip
@click.option("--aligned", "kind", flag_value="crop", help="Same as --input crop.")
@click.option("--photos", "kind", flag_value="photo", help="Same as --input photo.")
@click.option(
    "--method",
    help="Method name (`progface models` lists them) [default: the registered upscale "
    "default, ours: the shipped progressive generator].",
)
@click.option("--weights", type=click.Path(path_type=str), help="Weight file for the method.")
@crop_option("center")
@click.option("--simulate", is_flag=True,
              help="Crops larger than 16 px: also write OUT/simulate/NAME.png, HR | LR | bicubic "
              "| SR with PSNR against the input.")  # fmt: skip
@click.option("--scale", type=click.IntRange(min=1), default=8, show_default=True,
              help="Photos: enlargement (the largest scale under 100 Mpx of output is used "
              "when it is too large, with a note).")  # fmt: skip
@click.option("--detector", help="Photos: registered face detector (`progface models` lists "
              "them) [default: the registered upscale default, opencv-haar].")  # fmt: skip
@click.option("--bg-method", type=click.Choice(["bicubic", "bilinear", "nearest"]),
              default="bicubic", show_default=True,
              help="Photos: how the whole photo is enlarged (registered methods are 16 -> 128 "
              "face networks, not whole-image upsamplers).")  # fmt: skip
@click.option("--min-face", type=click.FloatRange(min=0), default=4.0, show_default=True,
              help="Photos: faces narrower than this (photo px) are left alone.")  # fmt: skip
@click.option("--max-face", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Photos: faces wider than this are left to the background (measured: the "
              "restored face beats bicubic for 59% of 10-px faces, 21% of 12-px).")  # fmt: skip
@click.option("--restore-large", is_flag=True, help="Photos: restore faces wider than --max-face.")
@click.option("--only-center-face", is_flag=True,
              help="Photos: restore only the face nearest the centre.")  # fmt: skip
@click.option("--draw-boxes", is_flag=True, help="Photos: draw each face's box on the output "
              "(green restored, orange not).")  # fmt: skip
@click.option("--ext", type=click.Choice(["png", "jpg"]), default="png", show_default=True,
              help="Photos: output format (jpg: quality 95).")  # fmt: skip
@click.option("--suffix", default="", show_default=True,
              help="Photos: added to the output name (OUT is never an input folder, so names "
              "stay those of the inputs by default).")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@batch_size_option()
@device_option()
@precision_option("auto", "The network runs folded for inference at this precision; auto: "
                  "bf16 where the device computes it natively (within 0.002 dB of fp32 on val), "
                  "else fp32.")  # fmt: skip
@runtime_option()
@friendly_errors
def upscale(paths, out, recursive, kind, method, weights, crop, simulate, scale, detector,
            bg_method, min_face, max_face, restore_large, only_center_face, draw_boxes, ext,
            suffix, overwrite, batch_size, device, precision, runtime):  # fmt: skip
    from progface.jobs.upscale import upscale_folder

    manifest = upscale_folder(
        list(paths), out, method=method, crop=crop, weights=weights,
        overwrite=overwrite, device=device, batch_size=batch_size, precision=precision,
        runtime=runtime, progress=sys.stderr.isatty() or None, recursive=recursive, kind=kind,
        simulate=simulate, ext=ext, suffix=suffix, scale=scale, detector=detector,
        bg_method=bg_method, min_face=min_face, max_face=max_face, restore_large=restore_large,
        only_center_face=only_center_face, draw_boxes=draw_boxes,
    )  # fmt: skip
    for entry in manifest["files"]:
        if entry["status"] == "skipped":
            click.echo(f"skipped {entry['input']}: {entry['reason']}", err=True)
        if entry.get("warning"):
            click.echo(f"warning: {entry['input']}: {entry['warning']}", err=True)
        for note in entry.get("notes", ()):
            click.echo(f"note: {entry['input']}: {note}", err=True)
    if manifest["counts"].get("kept"):
        click.echo(f"kept {manifest['counts']['kept']} input(s) whose outputs exist in {out} "
                   "(not replaced; pass --overwrite to replace them)", err=True)  # fmt: skip
    counts = ", ".join(f"{n} {s}" for s, n in sorted(manifest["counts"].items()))
    kinds = ", ".join(f"{n} {k}(s)" for k, n in sorted(manifest["kinds"].items()))
    faces = sum(e.get("restored", 0) for e in manifest["files"])
    photos = f", {faces} face(s) restored" if manifest["kinds"].get("photo") else ""
    click.echo(f"{manifest['method']}: {counts} ({kinds}{photos}); "
               f"manifest: {manifest['manifest']}")  # fmt: skip
