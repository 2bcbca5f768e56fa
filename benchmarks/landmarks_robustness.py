"""Where landmark heatmap sources fail: NME broken down by landmark group, head pose and face size.

    python benchmarks/landmarks_robustness.py --data DIR --out OUTDIR \\
        [--source [LABEL:]NAME[=WEIGHTS]]... [--sizes 64,128] [--worst 8] [--limit N] \\
        [--mean-from DIR[,DIR] | --mean-from none] [--overwrite]

Each ``--source`` is a registered heatmap source (``fan-distilled``, ``dlib68``, ...), optionally
with a weight file and a label, so that old and new weights can be compared side by side::

    --source shipped:fan-distilled --source new:fan-distilled=runs/x/best.safetensors

(default: ``fan-distilled`` with its shipped weights). A source that cannot be built (``dlib68``
without the dlib extra) is skipped with a note. Every source runs on the faces of ``--data``
resized to each of ``--sizes`` px (``progface.landmarks.evaluate.landmark_errors``); errors are
measured in the labels' 128-px frame. The "mean face" baseline predicts the mean labelled shape of
the ``--mean-from`` folders for every face (as ``benchmarks/landmarks_mean_shape.py``): a source
is only useful where it beats it.

Written to OUTDIR (existing report files are kept unless ``--overwrite``):

- ``robustness.md``: mean NME in % of the inter-ocular distance (outer eye corners, landmarks 36
  and 45 of the labels) per source and size: overall, by landmark group, by head-pose bucket,
  by face-size bucket, and the share of gross errors; every bucket row gives its face count;
- ``failures_<label>_<size>.png``: the ``--worst`` faces of each source and size, predicted
  points red, labelled points green, captioned with file name and NME;
- ``robustness.json``: every number above, plus each face's pose proxies and per-image NME.

The buckets (all computed from the LABELLED landmarks, never from a prediction):

- landmark groups (iBUG 68): jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67;
- yaw proxy ``r``: the offset of the nose tip (30) from the midpoint of the outer eye corners
  (36, 45), measured along the eye-corner line and divided by their distance. 0 for a symmetric
  face; positive when the nose tip lies towards landmark 45 (image right on an upright face).
  Buckets: frontal ``|r| < 0.1``, moderate ``0.1 <= |r| < 0.25``, profile-ish ``|r| >= 0.25``;
- roll: the angle of the line from landmark 36 to 45 against the image x axis, in degrees;
  buckets by ``|roll|``: ``< 5``, ``5-15``, ``>= 15``;
- face size: the inter-ocular distance in px of the 128-px frame, split at its terciles over the
  evaluated faces (the px range of each bucket is printed);
- gross error: a landmark more than 0.3 inter-ocular distances from its label (the share of such
  points, and of faces with at least one).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from progface import plugins
from progface.landmarks.data import LandmarkFaces, load_landmark_faces
from progface.landmarks.evaluate import landmark_errors
from progface.landmarks.figure import landmark_tile

DEFAULT_MEAN_FROM = "/work/shared/data/faces/train/helen"
REPORT_FILES = ("robustness.md", "robustness.json")

GROUPS = {
    "jaw": range(0, 17),
    "brows": range(17, 27),
    "nose": range(27, 36),
    "eyes": range(36, 48),
    "mouth": range(48, 68),
}
OUTER_EYE_CORNERS = (36, 45)  # iBUG 68, as the inter-ocular NME of progface.metrics.nme
NOSE_TIP = 30
GROSS_ERROR = 0.3  # inter-ocular distances
YAW_EDGES = (0.1, 0.25)
YAW_NAMES = ("frontal |r| < 0.1", "moderate 0.1-0.25", "profile-ish |r| >= 0.25")
ROLL_EDGES = (5.0, 15.0)
ROLL_NAMES = ("|roll| < 5 deg", "|roll| 5-15 deg", "|roll| >= 15 deg")
SIZE_NAMES = ("small", "medium", "large")


# --- pose and size of the labelled faces ------------------------------------------------------


def inter_ocular(points: Tensor) -> Tensor:
    """Outer-eye-corner distance of landmarks ``[M, 68, 2]`` -> ``[M]`` px."""
    a, b = OUTER_EYE_CORNERS
    return (points[:, b] - points[:, a]).norm(dim=-1)


def yaw_proxy(points: Tensor) -> Tensor:
    """Signed offset of the nose tip from the eye-corner midpoint, along the eye-corner line,
    in inter-ocular distances ``[M]`` (0: symmetric; the line's direction makes it roll-free)."""
    a, b = OUTER_EYE_CORNERS
    eye_line = points[:, b] - points[:, a]
    middle = (points[:, a] + points[:, b]) / 2
    offset = points[:, NOSE_TIP] - middle
    return (offset * eye_line).sum(dim=-1) / eye_line.norm(dim=-1) ** 2


def roll_degrees(points: Tensor) -> Tensor:
    """Angle of the line from landmark 36 to 45 against the x axis, in degrees ``[M]``
    (positive: landmark 45 lower in the image, as y grows downwards)."""
    a, b = OUTER_EYE_CORNERS
    d = points[:, b] - points[:, a]
    return torch.rad2deg(torch.atan2(d[:, 1], d[:, 0]))


def bucket_of(values: Tensor, edges: tuple[float, ...]) -> Tensor:
    """Bucket index ``[M]`` of each value: 0 below ``edges[0]``, i for
    ``edges[i-1] <= v < edges[i]``, ``len(edges)`` from the last edge up."""
    return torch.bucketize(values.float(), torch.tensor(edges, dtype=torch.float32), right=True)


def size_buckets(iod: Tensor) -> tuple[Tensor, list[str], list[float]]:
    """Tercile buckets of inter-ocular distances: (index ``[M]``, names with the px range of
    each bucket, the two tercile edges)."""
    edges = torch.quantile(iod.double(), torch.tensor([1 / 3, 2 / 3], dtype=torch.float64))
    edges_list = [float(e) for e in edges]
    index = bucket_of(iod, tuple(edges_list))
    names = []
    for k, name in enumerate(SIZE_NAMES):
        inside = iod[index == k]
        span = f"{inside.min():.1f}-{inside.max():.1f} px" if len(inside) else "empty"
        names.append(f"{name} ({span})")
    return index, names, edges_list


@dataclass
class Buckets:
    """One way of splitting the faces: its title, bucket names and each face's bucket."""

    title: str
    names: list[str]
    index: Tensor


def face_buckets(points: Tensor) -> tuple[list[Buckets], dict]:
    """The pose and size bucketings of labelled faces, and their per-face proxies."""
    iod, yaw, roll = inter_ocular(points), yaw_proxy(points), roll_degrees(points)
    size_index, size_names, size_edges = size_buckets(iod)
    buckets = [
        Buckets("head pose: yaw proxy r", list(YAW_NAMES), bucket_of(yaw.abs(), YAW_EDGES)),
        Buckets("head pose: roll", list(ROLL_NAMES), bucket_of(roll.abs(), ROLL_EDGES)),
        Buckets("face size: inter-ocular distance (terciles)", size_names, size_index),
    ]
    proxies = {
        "inter_ocular_px": iod.tolist(),
        "yaw_proxy": yaw.tolist(),
        "roll_deg": roll.tolist(),
        "size_tercile_edges_px": size_edges,
    }
    return buckets, proxies


# --- errors of one source at one size ----------------------------------------------------------


def point_errors(pred: Tensor, points: Tensor) -> Tensor:
    """Distance of every predicted landmark from its label, in inter-ocular distances of the
    label ``[M, 68]``; its mean over the landmarks is the inter-ocular NME."""
    return (pred.float() - points.float()).norm(dim=-1) / inter_ocular(points.float())[:, None]


@dataclass
class Run:
    """One source at one working size: its predictions and per-landmark errors."""

    label: str
    size: int | None  # None: the mean face (no image is looked at)
    pred: Tensor  # [M, 68, 2], labels' frame
    errors: Tensor  # [M, 68], inter-ocular distances
    source: SourceArg | None = None  # None: the mean face

    @property
    def column(self) -> str:
        return f"{self.label} @ {self.size if self.size is not None else 'any'} px"

    @property
    def nme(self) -> Tensor:
        """Per-image NME ``[M]`` (fraction of the inter-ocular distance)."""
        return self.errors.mean(dim=1)


def pct(values: Tensor) -> float | None:
    """Mean in percent, None for no values."""
    return 100 * float(values.float().mean()) if values.numel() else None


def summary(run: Run, side: int, points: Tensor) -> dict:
    """Overall numbers of a run: NME (% inter-ocular, mean and median; % of image side),
    gross-error shares (% of points, % of faces with one)."""
    px = (run.pred.float() - points.float()).norm(dim=-1).mean(dim=1)
    gross = run.errors > GROSS_ERROR
    return {
        "nme_inter_ocular_pct": pct(run.nme),
        "nme_inter_ocular_median_pct": 100 * float(run.nme.median()),
        "nme_size_pct": pct(px / side),
        "gross_points_pct": pct(gross),
        "faces_with_gross_pct": pct(gross.any(dim=1)),
        "faces": len(run.nme),
    }


def by_group(run: Run) -> dict[str, float | None]:
    """Mean NME (% inter-ocular) of each landmark group."""
    return {name: pct(run.errors[:, list(idx)]) for name, idx in GROUPS.items()}


def by_bucket(run: Run, buckets: Buckets) -> list[float | None]:
    """Mean NME (% inter-ocular) of the faces in each bucket (None: empty bucket)."""
    return [pct(run.nme[buckets.index == k]) for k in range(len(buckets.names))]


# --- sources -------------------------------------------------------------------------------------


@dataclass
class SourceArg:
    """``[LABEL:]NAME[=WEIGHTS]`` of ``--source``."""

    label: str
    name: str
    weights: str | None = None


def parse_source(text: str) -> SourceArg:
    """``fan-distilled`` -> label ``fan-distilled``; ``fan-distilled=/w/best.safetensors`` ->
    label ``fan-distilled-best``; ``new:fan-distilled=/w/x.safetensors`` -> label ``new``."""
    head, eq, weights = text.partition("=")
    label, _, name = head.rpartition(":")
    if not name or (eq and not weights):
        raise argparse.ArgumentTypeError(f"expected [LABEL:]NAME[=WEIGHTS], got {text!r}")
    if not label:
        label = f"{name}-{Path(weights).stem}" if weights else name
    return SourceArg(label, name, weights or None)


def build_source(arg: SourceArg, device: str):
    """The registered heatmap source, with ``arg.weights`` for sources that take a file."""
    spec = plugins.get("heatmap_sources", arg.name)
    if spec.weights is not None:
        return spec.build(weights=arg.weights, device=device)
    if arg.weights:
        raise ValueError(f"heatmap source {arg.name!r} takes no weights")
    return spec.build(device=device)


def source_runs(
    arg: SourceArg, faces: LandmarkFaces, sizes: tuple[int, ...], device: str
) -> list[Run]:
    """Runs of one source at every size; [] (with a note) when a package it needs is missing
    (``dlib68`` without the dlib extra)."""
    try:
        source = build_source(arg, device)
    except ImportError as err:
        print(f"note: skipping source {arg.label} ({arg.name}): {err}", file=sys.stderr)
        return []
    images = faces.float_images().to(device)
    runs = []
    for size, e in landmark_errors(source, images, faces.points, sizes).items():
        run = Run(arg.label, size, e["pred"], point_errors(e["pred"], faces.points), arg)
        torch.testing.assert_close(run.nme, e["inter_ocular"].float())  # same NME definition
        runs.append(run)
    return runs


def mean_face_run(folders: list[str], faces: LandmarkFaces) -> list[Run]:
    """The mean labelled shape of ``folders`` predicted for every face (as
    ``benchmarks/landmarks_mean_shape.py``); [] (with a note) when the folders are missing."""
    missing = [f for f in folders if not Path(f).is_dir()]
    if missing:
        print(f"note: no mean-face baseline, missing {', '.join(missing)}", file=sys.stderr)
        return []
    train = load_landmark_faces(folders, size=faces.images.shape[-1])
    pred = train.points.mean(dim=0, keepdim=True).expand_as(faces.points)
    label = f"mean face ({len(train)} faces)"
    return [Run(label, None, pred, point_errors(pred, faces.points))]


# --- report --------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table, the first column left-aligned and the others right-aligned (``|`` in
    a cell escaped)."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    rule = "|---|" + "---:|" * (len(header) - 1)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def overall_table(runs: list[Run], summaries: list[dict]) -> str:
    header = ["source", "px", "NME % inter-ocular", "median", "NME % of size",
              "gross points %", "faces with gross %", "faces"]  # fmt: skip
    rows = [
        [run.label, str(run.size or "any"), fmt(s["nme_inter_ocular_pct"]),
         fmt(s["nme_inter_ocular_median_pct"]), fmt(s["nme_size_pct"], 3),
         fmt(s["gross_points_pct"]), fmt(s["faces_with_gross_pct"], 1), str(s["faces"])]
        for run, s in zip(runs, summaries)
    ]  # fmt: skip
    return md_table(header, rows)


def group_table(runs: list[Run], groups: list[dict]) -> str:
    header = ["source", "px", *(f"{n} ({g.start}-{g.stop - 1})" for n, g in GROUPS.items())]
    rows = [
        [run.label, str(run.size or "any"), *(fmt(v) for v in g.values())]
        for run, g in zip(runs, groups)
    ]
    return md_table(header, rows)


def bucket_table(runs: list[Run], buckets: Buckets, values: list[list[float | None]]) -> str:
    """Rows: buckets with their face counts; columns: the runs."""
    header = ["bucket", "faces", *(run.column for run in runs)]
    rows = [
        [name, str(int((buckets.index == k).sum())), *(fmt(v[k]) for v in values)]
        for k, name in enumerate(buckets.names)
    ]
    return md_table(header, rows)


def markdown(args, faces: LandmarkFaces, runs, summaries, groups, buckets, by_buckets) -> str:
    parts = [
        "# Landmark robustness report",
        "",
        f"Faces: {len(faces)} labelled faces of `{args.data}` (128-px frame). "
        f"NME: mean landmark error in % of the labelled outer-eye-corner distance (36-45), "
        f"mean over faces. Command: `{' '.join(sys.argv)}`",
        "",
        "## Overall",
        "",
        f"Gross error: a landmark more than {GROSS_ERROR} inter-ocular distances from its label.",
        "",
        overall_table(runs, summaries),
        "",
        "## By landmark group",
        "",
        group_table(runs, groups),
    ]
    notes = {
        0: "Yaw proxy r (from the labels): offset of the nose tip (30) from the midpoint of the "
        "outer eye corners (36, 45), along the eye-corner line, divided by their distance.",
        1: "Roll (from the labels): angle of the line from landmark 36 to 45, in degrees.",
        2: "Inter-ocular distance of the labels in the 128-px frame, split at its terciles.",
    }
    for k, (b, values) in enumerate(zip(buckets, by_buckets)):
        parts += ["", f"## By {b.title}", "", notes[k], "", bucket_table(runs, b, values)]
    return "\n".join(parts) + "\n"


def failure_figure(faces: LandmarkFaces, images: Tensor, run: Run, worst: int, tile: int = 192):
    """The ``worst`` faces of a run (highest NME), predicted red and labelled green, each
    captioned with its file name and NME."""
    from PIL import Image, ImageDraw, ImageFont

    order = torch.argsort(run.nme, descending=True)[:worst].tolist()
    per_row = min(4, len(order))
    rows = math.ceil(len(order) / per_row)
    title_h, caption_h = 22, 34
    canvas = Image.new("RGB", (per_row * tile, title_h + rows * (tile + caption_h)), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=12)
    draw.text((4, 4), f"{run.column}: worst {len(order)} of {len(faces)} "
              "(red: predicted, green: labelled)", fill="black", font=font)  # fmt: skip
    for k, i in enumerate(order):
        img = landmark_tile(images[i], run.pred[i], faces.points[i], tile)
        arr = (img * 255).round().byte().permute(1, 2, 0).numpy()
        x, y = (k % per_row) * tile, title_h + (k // per_row) * (tile + caption_h)
        canvas.paste(Image.fromarray(arr, "RGB"), (x, y))
        caption = f"{Path(faces.names[i]).name}\nNME {100 * float(run.nme[i]):.1f}% IOD"
        draw.multiline_text((x + 3, y + tile + 2), caption, fill="black", font=font)
    return canvas


def safe_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "source"


def report_paths(out: Path, sources: list[SourceArg], sizes: tuple[int, ...]) -> list[Path]:
    figures = [out / f"failures_{safe_name(s.label)}_{size}.png" for s in sources for size in sizes]
    return [out / name for name in REPORT_FILES] + figures


# --- command line --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="See the module docstring for the buckets.",
    )
    parser.add_argument("--data", required=True, help="Labelled faces (landmarks68.csv).")
    parser.add_argument("--out", required=True, type=Path, help="Report folder.")
    parser.add_argument(
        "--source", dest="sources", action="append", type=parse_source, metavar="[LABEL:]NAME[=W]",
        help="Heatmap source, repeatable [fan-distilled with its shipped weights].",
    )  # fmt: skip
    parser.add_argument("--sizes", default="64,128", help="Working resolutions [64,128].")
    parser.add_argument(
        "--worst", type=int, default=8, help="Faces per failure figure [8]; 0: none."
    )
    parser.add_argument("--limit", type=int, help="Use only the first N faces.")
    parser.add_argument(
        "--mean-from", default=DEFAULT_MEAN_FROM,
        help=f"Folder(s), comma-separated, of the mean-face baseline ('none': no baseline) "
        f"[{DEFAULT_MEAN_FROM}].",
    )  # fmt: skip
    parser.add_argument("--device", default="cpu", help="torch device [cpu].")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads [1].")
    parser.add_argument("--overwrite", action="store_true", help="Replace an existing report.")
    args = parser.parse_args(argv)
    args.sources = args.sources or [parse_source("fan-distilled")]
    args.sizes = tuple(int(s) for s in args.sizes.split(",") if s.strip())
    labels = [s.label for s in args.sources]
    if len(set(map(safe_name, labels))) != len(labels):
        parser.error(f"source labels must differ: {', '.join(labels)} (use LABEL:NAME=WEIGHTS)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    existing = [p for p in report_paths(args.out, args.sources, args.sizes) if p.exists()]
    if existing and not args.overwrite:
        sys.exit(f"{existing[0]} exists; pass --overwrite to replace the report")

    faces = load_landmark_faces([args.data], limit=args.limit)
    runs = [r for s in args.sources for r in source_runs(s, faces, args.sizes, args.device)]
    if args.mean_from.lower() != "none":
        runs += mean_face_run([f for f in args.mean_from.split(",") if f], faces)
    if not runs:
        sys.exit("no source could be evaluated")

    side = faces.images.shape[-1]
    buckets, proxies = face_buckets(faces.points)
    summaries = [summary(run, side, faces.points) for run in runs]
    groups = [by_group(run) for run in runs]
    by_buckets = [[by_bucket(run, b) for run in runs] for b in buckets]

    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(args, faces, runs, summaries, groups, buckets, by_buckets)
    (args.out / "robustness.md").write_text(text, encoding="utf-8")
    images = faces.float_images()
    for run in runs:
        if run.size is not None and args.worst > 0:
            path = args.out / f"failures_{safe_name(run.label)}_{run.size}.png"
            failure_figure(faces, images, run, args.worst).save(path)
    record = {
        "data": str(args.data),
        "faces": len(faces),
        "names": faces.names,
        "gross_error_inter_ocular": GROSS_ERROR,
        "groups": {name: [g.start, g.stop - 1] for name, g in GROUPS.items()},
        "bucketings": [
            {
                "title": b.title,
                "buckets": b.names,
                "counts": torch.bincount(b.index, minlength=len(b.names)).tolist(),
            }
            for b in buckets
        ],
        "yaw_edges": YAW_EDGES,
        "roll_edges_deg": ROLL_EDGES,
        "per_face": proxies,
        "runs": [
            {
                "label": run.label,
                "source": run.source.name if run.source else "mean-face",
                "weights": run.source.weights if run.source else None,
                "size": run.size,
                "overall": s,
                "groups_nme_pct": g,
                "buckets_nme_pct": [v[k] for v in by_buckets],
                "per_image_nme_inter_ocular_pct": (100 * run.nme).tolist(),
            }
            for k, (run, s, g) in enumerate(zip(runs, summaries, groups))
        ],
    }
    (args.out / "robustness.json").write_text(json.dumps(record, indent=1) + "\n")
    print(overall_table(runs, summaries))
    print(f"\nwrote {args.out}/robustness.md, robustness.json and the failure figures")


if __name__ == "__main__":
    main()
