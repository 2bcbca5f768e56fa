"""Heatmaps per second of the landmark sources at 64 and 128 px, with their sizes.

    python benchmarks/landmarks_speed.py [--threads 1] [--batch 32] [--repeats 5]

Times ``fan-distilled`` (the network, and with its shape prior), FAN-4 (face-alignment's
2D-FAN-4, 23.8 M parameters, run as the paper's teacher: resized to 256 px; its cost does not
depend on its weights, so random ones are used when the file is not on this machine) and
``dlib68`` (dlib's 68-point predictor on a fixed box; skipped without the ``dlib`` extra) on
random faces, median of ``--repeats`` after one warm-up, in ``torch.inference_mode``. Prints a
Markdown table with parameters, file size and heatmaps/s at each size.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from progface.landmarks.fan import FAN
from progface.landmarks.sources import FanDistilledSource, FanSource
from progface.weights import PACKAGE_WEIGHTS
from progface.weights.landmarks import FAN_DISTILLED_SHIPPED


def rate(fn, faces: torch.Tensor, repeats: int) -> float:
    """Faces per second of ``fn(faces)``: median over ``repeats`` timed calls after a warm-up."""
    with torch.inference_mode():
        fn(faces)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn(faces)
            times.append(time.perf_counter() - start)
    return len(faces) / statistics.median(times)


def sources() -> dict[str, tuple[object, int, str]]:
    """label -> (source, parameters, file size)"""
    raw, with_prior = FanDistilledSource.load(shape_prior=False), FanDistilledSource.load()
    params = sum(p.numel() for p in raw.parameters())
    size = (PACKAGE_WEIGHTS / FAN_DISTILLED_SHIPPED.filename).stat().st_size
    out = {"fan-distilled (network)": (raw, params, f"{size / 1e6:.2f} MB")}
    if with_prior.prior is not None:
        out["fan-distilled (+ shape prior)"] = (with_prior, params, "")
    fan = FAN()
    fan_params = sum(p.numel() for p in fan.parameters())
    out["FAN-4 (teacher, 256 px)"] = (
        FanSource(fan),
        fan_params,
        f"{fan_params * 4 / 1e6:.1f} MB (fp32)",
    )
    try:
        from progface.landmarks.sources import Dlib68Source, dlib_model_path

        dat = dlib_model_path().stat().st_size
        out["dlib68"] = (Dlib68Source(), 0, f"{dat / 1e6:.1f} MB (.dat)")
    except ImportError as err:
        print(f"dlib68 skipped: {err}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default="64,128")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"torch {torch.__version__}, {platform.machine()}, {args.threads} thread(s), "
          f"batch {args.batch}, median of {args.repeats}\n")  # fmt: skip
    print(
        "| source | parameters | file | " + " | ".join(f"heatmaps/s {s} px" for s in sizes) + " |"
    )
    print("|---|---:|---|" + "---:|" * len(sizes))
    gen = torch.Generator().manual_seed(0)
    for label, (source, params, size) in sources().items():
        cells = []
        for s in sizes:
            faces = torch.rand(args.batch, 3, s, s, generator=gen)
            cells.append(f"{rate(source, faces, args.repeats):,.0f}")
        print(f"| {label} | {params:,} | {size} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
