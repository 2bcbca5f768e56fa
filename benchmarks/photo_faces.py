"""Face detection on small faces in photos: recall, alignment error and time per detector.

    OMP_NUM_THREADS=1 python benchmarks/photo_faces.py --limit 50
    python benchmarks/photo_faces.py --calibrate      # prints detect.BOX_POINTS

Data: ``$PROGFACE_SHARED/data/photos/helen_train`` (``../shared`` beside the repository by
default): Helen photos with 68-point labels of annotated faces (not every face is annotated,
so unmatched detections are not counted as errors). Each photo is shrunk (PIL bilinear, which
antialiases when reducing) so that the median width of its annotated faces is W px (8 to 45).

A face's true box is the bounding box of its 68 points and its width that box's width (jaw to
jaw, as ``progface.faces.align.ALIGNED_FACE_WIDTH``). A detection matches a labelled face when
its box centre lies inside the labelled box and the box widths agree within 2x; each detection
and each label match once (detections in order of score). Alignment error: the mean distance,
in pixels of the 128-px aligned frame, between where the labelled 5 points land under the
detector's alignment and under the alignment from the labelled 5 points (0 = the network sees
exactly the framing the labels give). Time: ``detect`` per photo (enlargement, detection and
landmarks), one thread.

Writes ``benchmarks/results/photo-faces-<date>.md`` (machine, commit, command) and prints it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def shared_photos() -> Path:
    root = Path(os.environ.get("PROGFACE_SHARED") or REPO.parent / "shared")
    return root / "data" / "photos" / "helen_train"


def read_labels(folder: Path) -> dict[str, list[np.ndarray]]:
    from progface.data.landmarks_io import read_photo_landmarks

    return read_photo_landmarks(folder / "landmarks68.csv")


def shrink(path: Path, faces: list[np.ndarray], width: float):
    """The photo resized so its median labelled face is ``width`` px; labels moved with it."""
    img = Image.open(path).convert("RGB")
    widths = [p[:, 0].max() - p[:, 0].min() for p in faces]
    f = width / float(np.median(widths))
    size = (max(1, round(img.width * f)), max(1, round(img.height * f)))
    small = img.resize(size, Image.Resampling.BILINEAR)
    sx, sy = size[0] / img.width, size[1] / img.height
    return np.asarray(small), [(p + 0.5) * [sx, sy] - 0.5 for p in faces]


def match(faces, labels) -> list[tuple[int, object]]:
    """(label index, detection) pairs under the documented rule."""
    pairs, used = [], set()
    for det in sorted(faces, key=lambda d: -d.score):
        cx, cy = det.center
        bw = det.box[2] - det.box[0]
        for i, p in enumerate(labels):
            if i in used:
                continue
            x0, y0 = p.min(0)
            x1, y1 = p.max(0)
            if x0 <= cx <= x1 and y0 <= cy <= y1 and 0.5 <= bw / (x1 - x0) <= 2.0:
                used.add(i)
                pairs.append((i, det))
                break
    return pairs


def alignment_error(det, p68: np.ndarray) -> float:
    from progface.faces.align import TEMPLATES, apply_affine, points_from_68, similarity_transform

    gt5 = points_from_68(p68, "standard")
    m_gt = similarity_transform(gt5, TEMPLATES["standard"])
    m_det = similarity_transform(det.landmarks5, TEMPLATES[det.scheme])
    d = apply_affine(m_det, gt5) - apply_affine(m_gt, gt5)
    return float(d.norm(dim=-1).mean())


def evaluate(name: str, options: dict, photos, labels, widths, full_size: int) -> list[dict]:
    from progface.faces.detect import build_detector

    det = build_detector(name, **options)
    rows = []
    for width in widths:
        found = total = n_det = 0
        errs, seconds = [], 0.0
        for path in photos:
            arr, lab = shrink(path, labels[path.name], width)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                faces = det.detect(arr)
            seconds += time.perf_counter() - t0
            pairs = match(faces, lab)
            found, total, n_det = found + len(pairs), total + len(lab), n_det + len(faces)
            errs += [alignment_error(d, lab[i]) for i, d in pairs]
        rows.append(
            {
                "detector": name,
                "width": width,
                "recall": found / total,
                "found": found,
                "total": total,
                "per_photo": n_det / len(photos),
                "align_err": float(np.median(errs)) if errs else float("nan"),
                "ms": 1000 * seconds / len(photos),
                "factor": det.last_factor,
            }
        )
        print(f"  {name} {options} {width}px: {rows[-1]}", file=sys.stderr, flush=True)
    if full_size:
        seconds, mpx = 0.0, 0.0
        for path in photos[:full_size]:
            arr = np.asarray(Image.open(path).convert("RGB"))
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                det.detect(arr)
            seconds += time.perf_counter() - t0
            mpx += arr.shape[0] * arr.shape[1] / 1e6
        rows.append(
            {
                "detector": name,
                "width": "full",
                "ms": 1000 * seconds / full_size,
                "mpx": mpx / full_size,
                "factor": det.last_factor,
            }
        )
    return rows


class LabelledFaces:
    """A detector that returns the labelled faces (isolates the SR step from detection)."""

    name = "labels"

    def __init__(self) -> None:
        self.faces: list = []

    def detect(self, image):
        return self.faces


def gain(method: str, photos, labels, widths, scale: int) -> list[dict]:
    """Does restoring a face beat the background? PSNR of the face regions against the
    original photo resized to the output size (it has 4-20x more detail than the output)."""
    from progface.faces.align import points_from_68
    from progface.faces.detect import Face
    from progface.faces.paste import enlarge
    from progface.faces.restore import restore_photos
    from progface.jobs.runtime import load_method

    model, _ = load_method(method, "cpu")
    det = LabelledFaces()
    rows = []
    for width in widths:
        sr_db, bic_db = [], []
        for path in photos:
            small, lab = shrink(path, labels[path.name], width)
            h, w = small.shape[:2]
            full = Image.open(path).convert("RGB")
            truth = np.asarray(full.resize((w * scale, h * scale), Image.Resampling.BILINEAR))
            det.faces = [Face((0, 0, 1, 1), 1.0, points_from_68(p)) for p in lab]
            (res,) = restore_photos(
                [small], model, scale=scale, detector=det, min_face=0, max_face=1e9
            )
            base = enlarge(small, scale)
            for p in lab:
                q = (p + 0.5) * scale - 0.5
                x0, y0 = np.floor(q.min(0)).astype(int).clip(0)
                x1, y1 = np.ceil(q.max(0)).astype(int) + 1
                ref = truth[y0:y1, x0:x1].astype(float)
                for out, acc in ((res.image, sr_db), (base, bic_db)):
                    mse = ((out[y0:y1, x0:x1].astype(float) - ref) ** 2).mean()
                    acc.append(10 * np.log10(255**2 / mse))
        sr_db, bic_db = np.array(sr_db), np.array(bic_db)
        rows.append(
            {
                "width": width,
                "sr": sr_db.mean(),
                "bicubic": bic_db.mean(),
                "better": float((sr_db > bic_db).mean()),
                "faces": len(sr_db),
            }
        )
        print(f"  gain {width}px: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def lr_check(method: str, limit: int) -> list[dict]:
    """How much the LR construction costs: held-out CelebA faces (128 px, with labels) are
    given as photos of 16, 32 or 64 px (made by the paper's chain, so the 16-px photo is the
    true LR); the network's output from ``lr_crops`` variants is scored (PSNR, RGB) against the
    HR face re-aligned to the template, next to the output from the ideal LR (the chain of that
    re-aligned HR)."""
    import torch

    from progface.data.degrade import degrade_chain
    from progface.data.landmarks_io import read_landmarks_csv
    from progface.faces.align import (
        TEMPLATES,
        aligned_crops,
        lr_crops,
        points_from_68,
        similarity_transform,
    )
    from progface.jobs.runtime import load_method

    root = shared_photos().parents[1] / "faces" / "val" / "celeba_heldout_ids"
    labels = read_landmarks_csv(root / "landmarks68.csv")
    names = sorted(n for n, r in labels.items() if r.source == "dlib_det")[:limit]
    model, _ = load_method(method, "cpu")
    variants = {
        "ideal LR": None,
        "entry, bicubic (default)": {"mode": "bicubic"},
        "entry, bilinear": {"mode": "bilinear"},
        "128 + whole chain, bilinear": {"mode": "bilinear", "entry": 128},
    }
    rows = []
    for size in (16, 32, 64):
        scores: dict[str, list[float]] = {k: [] for k in variants}
        for name in names:
            arr = np.asarray(Image.open(root / name).convert("RGB"), np.float32) / 255
            hr = torch.from_numpy(arr).permute(2, 0, 1)[None]
            pts = labels[name].points.astype(np.float64)
            m = similarity_transform(points_from_68(pts), TEMPLATES["standard"])
            target = aligned_crops(hr[0], m[None])
            photo = {
                16: degrade_chain(hr, quantize=True)[-1],
                32: degrade_chain(hr, (64, 32), quantize=True)[-1],
                64: degrade_chain(hr, (64,), quantize=True)[-1],
            }[size]
            f = size / 128
            m_photo = similarity_transform(
                points_from_68((pts + 0.5) * f - 0.5), TEMPLATES["standard"]
            )
            for key, opts in variants.items():
                if opts is None:
                    lr = degrade_chain(target, quantize=True)[-1]
                else:
                    lr = lr_crops(photo[0], m_photo[None], **opts)
                with torch.inference_mode():
                    sr = model(lr).float().clamp(0, 1)
                mse = float(((sr - target) ** 2).mean())
                scores[key].append(10 * np.log10(1 / mse))
        rows.append({"size": size, **{k: float(np.mean(v)) for k, v in scores.items()}})
        print(f"  lr-check {size}px: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def calibrate(photos, labels) -> None:
    """Mean 5 points relative to each detector's box, on photos at half size (large faces)."""
    from progface.faces.align import points_from_68
    from progface.faces.detect import DETECTORS

    for name, cls in DETECTORS.items():
        det = cls(landmarks="box", min_face=80)
        rel, ratio = [], []
        for path in photos:
            img = Image.open(path).convert("RGB")
            half = img.resize((img.width // 2, img.height // 2), Image.Resampling.BILINEAR)
            sx, sy = half.width / img.width, half.height / img.height
            lab = [(p + 0.5) * [sx, sy] - 0.5 for p in labels[path.name]]
            for i, d in match(det.detect(np.asarray(half)), lab):
                side = d.box[2] - d.box[0]
                five = points_from_68(lab[i], "standard")
                rel.append((five - [d.box[0], d.box[1]]) / side)
                ratio.append(side / (lab[i][:, 0].max() - lab[i][:, 0].min()))
        mean = np.mean(rel, 0)
        print(
            f'"{name}": {np.round(mean, 3).tolist()},  # {len(rel)} faces, '
            f"box / face width {np.mean(ratio):.3f}"
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=Path, default=shared_photos())
    ap.add_argument("--limit", type=int, default=50, help="first N photos by name (0: all)")
    ap.add_argument("--widths", default="8,10,12,20,30,45")
    ap.add_argument(
        "--detectors",
        default="dlib-hog,dlib-hog@5,dlib-cnn,opencv-haar,opencv-haar@box",
        help="names; NAME@L sets landmarks=L (68, 5, box) for that entry",
    )
    ap.add_argument("--landmarks", default="68", help="68, 5 or box")
    ap.add_argument("--min-face", type=float, default=8.0)
    ap.add_argument("--full-size", type=int, default=3, help="time N photos at stored size")
    ap.add_argument(
        "--no-full-size",
        default="dlib-cnn",
        help="detectors not timed at stored size (dlib-cnn: minutes per photo)",
    )
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--gain", metavar="METHOD", help="instead: does restoring beat bicubic?")
    ap.add_argument("--gain-widths", default="8,12,16,24,32")
    ap.add_argument("--gain-scale", type=int, default=4)
    ap.add_argument("--lr-check", metavar="METHOD", help="instead: cost of the LR construction")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if not (args.photos / "landmarks68.csv").is_file():
        sys.exit(f"{args.photos}: no landmarks68.csv (set PROGFACE_SHARED)")
    import torch

    torch.set_num_threads(1)
    labels = read_labels(args.photos)
    photos = sorted(args.photos / n for n in labels)
    if args.limit:
        photos = photos[: args.limit]
    if args.calibrate:
        calibrate(photos, labels)
        return
    if args.lr_check:
        write_lr_check(args, argv, lr_check(args.lr_check, args.limit or 60))
        return
    if args.gain:
        widths = [float(w) for w in args.gain_widths.split(",")]
        write_gain(args, argv, gain(args.gain, photos, labels, widths, args.gain_scale), photos)
        return
    widths = [float(w) for w in args.widths.split(",")]
    rows = []
    for spec in args.detectors.split(","):
        name, _, marks = spec.partition("@")  # dlib-hog@5: that detector with landmarks=5
        opts = {"min_face": args.min_face, "landmarks": marks or args.landmarks}
        timed = 0 if name in args.no_full_size.split(",") else args.full_size
        rows += [
            {**r, "detector": spec} for r in evaluate(name, opts, photos, labels, widths, timed)
        ]
    import dlib

    try:
        import cv2

        cv = cv2.__version__
    except ImportError:
        cv = "absent"
    now = datetime.datetime.now(datetime.timezone.utc)
    n_faces = sum(len(labels[p.name]) for p in photos)
    lines = [
        f"# Face detection on small faces in photos ({now:%Y-%m-%d})",
        "",
        *header(argv),
        f"- dlib {dlib.__version__}, OpenCV {cv}",
        f"- data: the first {len(photos)} of {len(labels)} Helen photos ({n_faces} annotated faces), "
        "each shrunk so that its median annotated face is W px wide",
        f"- detectors built with min_face={args.min_face:g}, landmarks={args.landmarks} "
        "(NAME@L: landmarks=L)",
        "- match: box centre inside the labelled 68-point box and widths within 2x; "
        "alignment error: median over matched faces of the mean displacement of the labelled "
        "5 points in the 128-px aligned frame (px)",
        "",
        "| detector | face width (px) | recall | found / labelled | detections per photo "
        "| alignment error (px @128) | ms per photo | enlargement |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["width"] == "full":
            continue
        lines.append(
            f"| {r['detector']} | {r['width']:g} | {r['recall']:.2f} | {r['found']}/{r['total']} "
            f"| {r['per_photo']:.2f} | {r['align_err']:.1f} | {r['ms']:.0f} | x{r['factor']:.1f} |"
        )
    full = [r for r in rows if r["width"] == "full"]
    if full:
        lines += [
            "",
            f"Time on photos at their stored size (first {args.full_size}, longer side "
            "1024 px), the same settings (enlargement capped at max_detect_pixels = 24 Mpx; "
            f"not timed: {args.no_full_size}):",
            "",
            "| detector | Mpx per photo | enlargement | s per photo |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {r['detector']} | {r['mpx']:.2f} | x{r['factor']:.1f} | {r['ms'] / 1000:.1f} |"
            for r in full
        ]
    text = "\n".join(lines) + "\n"
    out = args.out or HERE / "results" / f"photo-faces-{now:%Y-%m-%d}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


def header(argv) -> list[str]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", "progface", "benchmarks"],
        capture_output=True,
        text=True,
        cwd=REPO,
    ).stdout.strip()
    now = datetime.datetime.now(datetime.timezone.utc)
    return [
        f"- command: `python benchmarks/photo_faces.py {' '.join(argv or sys.argv[1:])}`",
        f"- date: {now:%Y-%m-%d %H:%M} UTC, commit {commit}"
        f"{' (+ uncommitted changes)' if dirty else ''}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores (shared, one thread used), "
        f"Python {platform.python_version()}",
    ]


def write_gain(args, argv, rows, photos) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    n = sum(r["faces"] for r in rows) // len(rows)
    lines = [
        f"# Does restoring small faces beat the background? ({now:%Y-%m-%d})",
        "",
        *header(argv),
        f"- data: the first {len(photos)} Helen photos ({n} annotated faces), shrunk so that "
        "the median annotated face is W px wide; faces placed from their labelled 5 points "
        f"(no detector); method `{args.gain}`, background bicubic, output x{args.gain_scale}",
        "- PSNR (dB, RGB) of each labelled face's box in the output against the original "
        "photo resized to the output size (bilinear, antialiased), averaged over faces",
        "",
        f"| face width (px) | restored ({args.gain}) | bicubic | faces where restored is better |",
        "|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['width']:g} | {r['sr']:.2f} | {r['bicubic']:.2f} | {r['better']:.0%} |" for r in rows
    ]
    text = "\n".join(lines) + "\n"
    out = args.out or HERE / "results" / f"photo-faces-gain-{now:%Y-%m-%d}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


def write_lr_check(args, argv, rows) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    keys = [k for k in rows[0] if k != "size"]
    lines = [
        f"# What the LR construction costs ({now:%Y-%m-%d})",
        "",
        *header(argv),
        f"- data: the first {args.limit or 60} held-out CelebA faces with dlib labels "
        "(`faces/val/celeba_heldout_ids`) given as photos of 16/32/64 px made by the paper's "
        f"chain; method `{args.lr_check}`; PSNR (dB, RGB) of its 128-px output against the HR "
        "face re-aligned to the template by its labelled 5 points",
        "- ideal LR: the chain of that re-aligned HR; entry: `lr_crops` warping into the first "
        "chain stage the photo fills; 128 + whole chain: warping into 128 px first",
        "",
        "| photo size (px) | " + " | ".join(keys) + " |",
        "|---:|" + "---:|" * len(keys),
    ]
    lines += [f"| {r['size']} | " + " | ".join(f"{r[k]:.2f}" for k in keys) + " |" for r in rows]
    text = "\n".join(lines) + "\n"
    out = args.out or HERE / "results" / f"photo-faces-lr-{now:%Y-%m-%d}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
