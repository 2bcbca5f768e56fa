"""Package a distillation run's best student as progface's shipped ``fan-distilled`` weights.

    python benchmarks/ship_fan_distilled.py RUN_DIR --test ../shared/data/faces/val/helen_test

Reads ``RUN_DIR/best.safetensors`` (lowest validation NME) and ``RUN_DIR/config.toml``,
measures NME on the test folder's human labels at 64 and 128 px, and writes
``progface/weights/fan_distilled_landmarks.safetensors`` with the run's facts in its config.
Prints the sha256 for ``FAN_DISTILLED_SHIPPED`` in ``progface/weights/landmarks.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from progface.landmarks.data import load_landmark_faces
from progface.landmarks.evaluate import landmark_errors
from progface.landmarks.fan_distilled import FanDistilled
from progface.train.config import read_toml
from progface.weights import PACKAGE_WEIGHTS, load_safetensors, save_safetensors, sha256_of
from progface.weights.landmarks import FAN_DISTILLED_SHIPPED


def _short(path: str) -> str:
    """``/any/where/data/faces/train/celeba`` -> ``faces/train/celeba`` (no local paths)."""
    parts = Path(path).parts
    return "/".join(parts[parts.index("faces") :]) if "faces" in parts else Path(path).name


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("--test", required=True, type=Path)
    args = parser.parse_args()
    tensors, config = load_safetensors(args.run / "best.safetensors")
    run_cfg = read_toml(args.run / "config.toml")
    model = FanDistilled()
    model.load_state_dict(tensors, strict=True)
    model.eval()
    faces = load_landmark_faces([args.test])
    errors = landmark_errors(model, faces.float_images(), faces.points, (64, 128))
    test = {
        f"{args.test.name}/{kind}{size}": round(100 * float(e[key].mean()), 4)
        for size, e in errors.items()
        for kind, key in (("nme", "size"), ("nme_io", "inter_ocular"))
    }
    config["distillation"]["report"] = [_short(d) for d in config["distillation"]["report"]]
    config |= {
        "training_data": [_short(d) for d in run_cfg["data"]["train"].split(",")],
        "validation_data": _short(run_cfg["data"]["val"]),
        "batch_size": run_cfg["loop"]["batch_size"],
        "bf16_autocast": run_cfg["loop"]["bf16"],
        "validation_faces": run_cfg["data"]["val_limit"],
        "test": test,
        "test_data": _short(str(args.test)),
        "test_faces": len(faces),
        "nme_unit": "percent; nme: of the image side, nme_io: of the outer-eye-corner distance",
        "licence": FAN_DISTILLED_SHIPPED.licence,
    }
    dst = save_safetensors(tensors, PACKAGE_WEIGHTS / FAN_DISTILLED_SHIPPED.filename, config)
    print(f"wrote {dst} ({dst.stat().st_size:,} bytes), iteration {config['iteration']}")
    for key, value in sorted(test.items()):
        print(f"  {key}: {value}")
    print(f"sha256 {sha256_of(dst)}")


if __name__ == "__main__":
    main()
