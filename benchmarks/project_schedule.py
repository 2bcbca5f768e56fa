"""The paper's 200k-iteration schedule projected from measured seconds per iteration.

    python benchmarks/project_schedule.py results/train_speed_step1_b16_cuda.json \
        results/train_speed_step2_b16_cuda.json results/train_speed_step3_b16_cuda.json

Reads ``benchmarks/train_speed.py`` results (one per step; their ``step`` field says which) and
prints each step's iterations per second and the wall time of the paper's schedule: 50k
iterations at step 1, 50k at step 2 and 100k at step 3, batch 16 (the authors' ``train.py``).
Data loading, validation and checkpoints are not counted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

PAPER_ITERATIONS = {1: 50_000, 2: 50_000, 3: 100_000}


def project(results: list[dict]) -> dict:
    """``{"steps": {step: s_per_it}, "hours": total or None}`` (None until all three steps)."""
    steps = {int(r["step"]): float(r["median_s_per_iteration"]) for r in results}
    hours = None
    if set(steps) == set(PAPER_ITERATIONS):
        hours = sum(PAPER_ITERATIONS[s] * steps[s] for s in steps) / 3600
    return {"steps": dict(sorted(steps.items())), "hours": hours}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="+", type=Path)
    args = parser.parse_args(argv)
    results = [json.loads(p.read_text()) for p in args.results]
    projection = project(results)
    first = results[0]
    print(f"device {first.get('device', 'cpu')}, batch {first['batch']}, bf16 {first['bf16']}, "
          f"channels_last {first['channels_last']}, torch {first['torch']}, commit {first['commit']}\n")  # fmt: skip
    print("| step | s / iteration | iterations / s | paper's iterations | hours |")
    print("|---:|---:|---:|---:|---:|")
    for step, s in projection["steps"].items():
        print(f"| {step} | {s:.3f} | {1 / s:.2f} | {PAPER_ITERATIONS[step]:,} | "
              f"{PAPER_ITERATIONS[step] * s / 3600:.1f} |")  # fmt: skip
    if projection["hours"] is not None:
        print(f"\nthe paper's 200k schedule: {projection['hours']:.1f} hours "
              f"({projection['hours'] / 24:.1f} days) of training steps alone")  # fmt: skip


if __name__ == "__main__":
    main()
