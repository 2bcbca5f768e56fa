"""Training curves of `progface train` runs: validation PSNR against iterations, one line each.

    python benchmarks/training_curves.py ours=RUN_A vdsr=RUN_B urdgn=RUN_C -o curves.png

Reads each run's ``metrics.jsonl``. Left: val PSNR at 128 px (the final output size). Right:
the gain over bilinear upsampling at the size being trained (32, 64, 128 px for the progressive
steps), so the early steps of a progressive run are comparable too. Needs matplotlib (in the
``dev`` extra).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def val_records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    by_iteration = {r["iteration"]: r for r in records if r.get("kind") == "val"}  # last wins
    return [by_iteration[i] for i in sorted(by_iteration)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", metavar="NAME=RUN_DIR")
    parser.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=120)
    for item in args.runs:
        name, _, folder = item.partition("=")
        records = val_records(Path(folder))
        final = [r for r in records if r["size"] == 128]
        line = left.plot([r["iteration"] for r in final], [r["psnr"] for r in final],
                         marker="o", ms=3, label=name)[0]  # fmt: skip
        for size, style in ((32, ":"), (64, "--"), (128, "-")):
            part = [r for r in records if r["size"] == size]
            if part:
                right.plot([r["iteration"] for r in part],
                           [r["psnr"] - r["bilinear_psnr"] for r in part],
                           style, color=line.get_color(), marker="o", ms=3,
                           label=f"{name} ({size} px)")  # fmt: skip
        if final:
            left.axhline(final[0]["bilinear_psnr"], color="grey", lw=0.8, ls="--")
    left.set(title="val PSNR at 128 px (dashed: bilinear)", xlabel="iteration", ylabel="dB")
    right.set(title="gain over bilinear at the trained size", xlabel="iteration", ylabel="dB")
    right.axhline(0, color="grey", lw=0.8)
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = args.out.with_name(f".{args.out.name}.tmp.png")
    fig.savefig(tmp)
    tmp.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
