"""Package a training run's best network as the shipped weights of a method (ours, vdsr, urdgn).

    python benchmarks/ship_weights.py ours RUN_DIR --val ../shared/data/faces/val/celeba_heldout_ids

Reads ``RUN_DIR/best.safetensors`` (highest validation PSNR at the final size) or, with
``--file``, another export of the run, and ``RUN_DIR/config.toml`` and ``metrics.jsonl``.
Measures val PSNR with the float32 weights and with the same weights rounded to float16 (both
computed in float32); the file is stored as float16 when the two differ by at most
``--fp16-tolerance`` dB (0.01), else as float32. Writes ``progface/weights/<spec filename>``
with the run's facts in its config (and the PSNR of the shipped tensors on the first 32 faces,
which the tests recompute) and prints its size and sha256 for the method's WeightSpec.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import torch

from progface import plugins
from progface.data.datasets import FaceFolder
from progface.metrics.quality import psnr
from progface.train.config import read_toml
from progface.weights import PACKAGE_WEIGHTS, load_safetensors, save_safetensors, sha256_of

REFERENCE_FACES = 32


def short_path(path: str) -> str:
    """``/any/where/data/faces/train/celeba`` -> ``faces/train/celeba`` (no local paths)."""
    parts = Path(path).parts
    return "/".join(parts[parts.index("faces") :]) if "faces" in parts else Path(path).name


@torch.no_grad()
def val_psnr(method: str, weights: Path, faces: FaceFolder, batch: int = 50) -> float:
    """Mean per-image RGB PSNR (clamped outputs) of ``method`` with ``weights`` on ``faces``."""
    model = plugins.get("methods", method).load(weights=weights, device="cpu")
    total, count = 0.0, 0
    for start in range(0, len(faces), batch):
        items = [faces[i] for i in range(start, min(start + batch, len(faces)))]
        lr = torch.stack([it["lr"] for it in items])
        hr = torch.stack([it["hr"] for it in items])
        total += float(psnr(model(lr).float().clamp(0, 1), hr).sum())
        count += len(items)
    return total / count


def training_facts(run: Path) -> dict:
    """What the run folder says about how the network was trained."""
    cfg = read_toml(run / "config.toml")
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r.get("kind") == "train"]
    return {
        "recipe": cfg["recipe"],
        "preset": cfg["preset"],
        "training_data": [short_path(d) for d in cfg["data"]["train"].split(os.pathsep) if d],
        "validation_data": short_path(cfg["data"]["val"]),
        "validation_faces": cfg["data"]["val_limit"],
        "batch_size": cfg["loop"]["batch_size"],
        "bf16_autocast": cfg["loop"]["bf16"],
        # a warm start's file by name only (no local paths in shipped files)
        "options": {
            k: Path(v).name if k.startswith("init_") and v else v
            for k, v in cfg.get("options", {}).items()
        },  # fmt: skip
        "iterations_run": max((r["iteration"] for r in train), default=0),
        "train_wall_seconds_last_segment": round(max((r["elapsed_s"] for r in train), default=0)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("method")
    parser.add_argument("run", type=Path)
    parser.add_argument("--val", required=True, type=Path)
    parser.add_argument("--val-limit", type=int, default=200)
    parser.add_argument("--file", default="best.safetensors")
    parser.add_argument("--fp16-tolerance", type=float, default=0.01)
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=JSON",
                        help="extra facts for the config, e.g. hardware=\"2-core CPU\"")  # fmt: skip
    args = parser.parse_args()

    spec = plugins.get("methods", args.method)
    tensors, config = load_safetensors(args.run / args.file)
    faces = FaceFolder(args.val, limit=args.val_limit)
    with tempfile.TemporaryDirectory() as tmp:
        half = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
        fp16_path = save_safetensors(half, Path(tmp) / "fp16.safetensors", config)
        fp32 = val_psnr(args.method, args.run / args.file, faces)
        fp16 = val_psnr(args.method, fp16_path, faces)
        use_half = abs(fp32 - fp16) <= args.fp16_tolerance
        # a small reference a test can recompute quickly: the shipped tensors on the first faces
        first = FaceFolder(args.val, limit=REFERENCE_FACES)
        reference = val_psnr(args.method, fp16_path if use_half else args.run / args.file, first)
    config |= training_facts(args.run)
    config |= {
        "dtype": "float16" if use_half else "float32",
        "fp16_check": {
            "faces": len(faces),
            "psnr_fp32": round(fp32, 4),
            "psnr_fp16": round(fp16, 4),
        },  # fmt: skip
        "reference": {"faces": len(first), "psnr": round(reference, 4)},
        "licence": spec.weights.licence,
    }
    for item in args.extra:
        key, _, value = item.partition("=")
        config[key] = json.loads(value)
    dst = save_safetensors(half if use_half else tensors, PACKAGE_WEIGHTS / spec.weights.filename,
                           config)  # fmt: skip
    print(f"wrote {dst} ({dst.stat().st_size:,} bytes, {config['dtype']})")
    print(f"val PSNR on {len(faces)} faces: fp32 {fp32:.4f} dB, fp16 weights {fp16:.4f} dB")
    print(f"sha256 {sha256_of(dst)}")


if __name__ == "__main__":
    main()
