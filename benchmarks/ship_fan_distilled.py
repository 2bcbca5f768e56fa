"""Package a distillation run's best student as progface's shipped ``fan-distilled`` weights.

    python benchmarks/ship_fan_distilled.py RUN_DIR --test ../shared/data/faces/val/helen_test \
        --prior-from ../shared/data/faces/train/celeba,../shared/data/faces/train/helen

Reads ``RUN_DIR/best.safetensors`` (lowest validation NME) and ``RUN_DIR/config.toml``; fits
the aligned-face shape prior (:mod:`progface.landmarks.shape_prior`) to the labels of the
``--prior-from`` folders (faces framed like the SR networks' inputs) and picks its spread on
the run's validation folder (never on the test folder); measures NME on the test folder's
human labels at 64 and 128 px with and without the prior, and writes
``progface/weights/fan_distilled_landmarks.safetensors`` with the run's facts and the prior in
its config. Prints the sha256 for ``FAN_DISTILLED_SHIPPED`` in ``progface/weights/landmarks.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from progface.landmarks.data import load_landmark_faces
from progface.landmarks.evaluate import landmark_errors
from progface.landmarks.fan_distilled import FanDistilled
from progface.landmarks.shape_prior import ShapePrior
from progface.landmarks.sources import FanDistilledSource
from progface.train.config import read_toml
from progface.weights import PACKAGE_WEIGHTS, load_safetensors, save_safetensors, sha256_of
from progface.weights.landmarks import FAN_DISTILLED_SHIPPED


def _short(path: str) -> str:
    """``/any/where/data/faces/train/celeba`` -> ``faces/train/celeba`` (no local paths)."""
    parts = Path(path).parts
    return "/".join(parts[parts.index("faces") :]) if "faces" in parts else Path(path).name


SPREADS = (1.5, 2.0, 2.5, 3.0, 4.0)


def _nme_io(source, faces, sizes=(64, 128)) -> dict[int, float]:
    errors = landmark_errors(source, faces.float_images(), faces.points, sizes)
    return {size: 100 * float(e["inter_ocular"].mean()) for size, e in errors.items()}


def pick_prior(model, prior_dirs: list[str], val_dir: str, val_limit: int | None) -> ShapePrior:
    """The prior fitted to ``prior_dirs`` with the spread of lowest mean NME on ``val_dir``."""
    points = load_landmark_faces(prior_dirs).points
    val = load_landmark_faces([val_dir], limit=val_limit)
    scores = {}
    for spread in SPREADS:
        prior = ShapePrior.from_points(points, spread=spread)
        nme = _nme_io(FanDistilledSource(model, prior=prior), val)
        scores[spread] = sum(nme.values()) / len(nme)
        print(f"  spread {spread}: validation NME (% inter-ocular) {nme}")
    best = min(scores, key=scores.get)
    print(f"  chosen spread {best} ({len(points)} labelled faces)")
    return ShapePrior.from_points(points, spread=best)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("--test", required=True, type=Path)
    parser.add_argument("--prior-from", required=True, help="comma-separated labelled folders")
    parser.add_argument(
        "--dst", type=Path, default=PACKAGE_WEIGHTS / FAN_DISTILLED_SHIPPED.filename
    )
    args = parser.parse_args()
    tensors, config = load_safetensors(args.run / "best.safetensors")
    run_cfg = read_toml(args.run / "config.toml")
    model = FanDistilled()
    model.load_state_dict(tensors, strict=True)
    model.eval()
    prior_dirs = [d for d in args.prior_from.split(",") if d]
    prior = pick_prior(model, prior_dirs, run_cfg["data"]["val"], run_cfg["data"]["val_limit"])
    faces = load_landmark_faces([args.test])
    test = {}
    for label, source in (("", FanDistilledSource(model, prior=prior)), ("raw_", model)):
        errors = landmark_errors(source, faces.float_images(), faces.points, (64, 128))
        test |= {
            f"{args.test.name}/{label}{kind}{size}": round(100 * float(e[key].mean()), 4)
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
        "shape_prior": prior.to_config(),
        "shape_prior_from": [_short(d) for d in prior_dirs],
    }
    dst = save_safetensors(tensors, args.dst, config)
    print(f"wrote {dst} ({dst.stat().st_size:,} bytes), iteration {config['iteration']}")
    for key, value in sorted(test.items()):
        print(f"  {key}: {value}")
    print(f"sha256 {sha256_of(dst)}")


if __name__ == "__main__":
    main()
