"""Validation curves of a `progface distill` run: NME against iterations.

    python benchmarks/distill_curves.py RUN_DIR -o curve.png [--offset 2000]

Reads ``RUN_DIR/metrics.jsonl``: the validation set's NME (% of the inter-ocular distance, the
figure that selected ``best.safetensors``) and every ``report`` folder's (never selected on),
at each training size. ``--offset`` adds the iterations of the weights a run was warm-started
from, so the x axis counts all the training the network has had. Needs matplotlib.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def val_records(run: Path) -> list[dict]:
    """The run's validation records, one per iteration (a resumed run's repeat wins)."""
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    by_iteration = {r["iteration"]: r for r in records if r.get("kind") == "val"}
    return [by_iteration[i] for i in sorted(by_iteration)]


def curves(records: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """``{"val nme_io64": [(iteration, value), ...], "helen_test nme_io128": ...}``."""
    out: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        for key, value in r.items():
            name = key.rsplit("/", 1)[-1]
            if not name.startswith("nme_io"):
                continue
            label = f"{key.rsplit('/', 1)[0] if '/' in key else 'val'} {name}"
            out.setdefault(label, []).append((int(r["iteration"]), float(value)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--offset", type=int, default=0)
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, points in sorted(curves(val_records(args.run)).items()):
        xs = [i + args.offset for i, _ in points]
        style = "-" if label.startswith("val") else "--"
        ax.plot(xs, [v for _, v in points], style, marker="o", ms=3, label=label)
    ax.set_xlabel(
        "iterations" + (f" (incl. {args.offset:,} of the warm start)" if args.offset else "")
    )
    ax.set_ylabel("NME, % of inter-ocular distance")
    ax.set_title("fan-distilled: network alone (no shape prior), lower is better")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
