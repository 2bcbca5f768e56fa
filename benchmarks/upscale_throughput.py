"""`progface upscale` end to end against the network alone, in one process and one run.

    python benchmarks/upscale_throughput.py --faces DIR [--n 400] [--batch 64] [--threads 2]
        [--repeats 3] [--scratch DIR]

Times, after one warm-up each and ``--repeats`` times alternately (median reported: a shared
machine's pace drifts between runs), (1) the method alone on the LR faces already in memory, in
batches of ``--batch`` (what the network can do), and (2) ``upscale_folder`` on the same N
files into an empty folder (decode, degradation chain, network, PNG writing of ``sr/`` and
``compare/``, manifest), with the same method, precision and batch size. The ratio is the share
of the network's throughput that the whole job keeps. The job's clock includes its own loading
of the weights (0.2 s); a process's start-up is not counted. Outputs go under ``--scratch``
(default: the current folder): the disk counts.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--faces", required=True, type=Path)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--method", default="ours")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    # where the job writes: the disk counts (creating a file in /tmp took 0.74 ms on the
    # 2-core machine, 0.12 ms on its work disk, the same ext4 volume)
    parser.add_argument("--scratch", type=Path, default=Path("."))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from progface.io.inputs import load_face, scan_folder
    from progface.jobs.runtime import load_method
    from progface.jobs.upscale import upscale_folder

    paths = scan_folder(args.faces)[0][: args.n]
    lr = torch.stack([load_face(p, "center")["lr"] for p in paths])
    model, facts = load_method(args.method, "cpu", precision=args.precision)

    def network() -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            for i in range(0, len(lr), args.batch):
                model(lr[i : i + args.batch]).float().clamp(0, 1)
        return time.perf_counter() - start

    network()  # warm-up
    net_times, job_times = [], []
    with tempfile.TemporaryDirectory(dir=args.scratch, prefix=".upscale-throughput-") as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        for p in paths:
            (src / p.name).symlink_to(p.resolve())

        def job(out: Path) -> float:
            start = time.perf_counter()
            upscale_folder(src, out, method=args.method, precision=args.precision,
                           batch_size=args.batch, device="cpu", progress=False)  # fmt: skip
            return time.perf_counter() - start

        job(Path(tmp) / "warm")
        for k in range(args.repeats):
            net_times.append(network())
            job_times.append(job(Path(tmp) / f"out{k}"))
    net_s, job_s = statistics.median(net_times), statistics.median(job_times)
    n = len(paths)
    print(f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{args.threads} threads, method {facts['method']} at {facts.get('precision')}, "
          f"batch {args.batch}, {n} faces, median of {args.repeats}, outputs under "
          f"{args.scratch.resolve()}\n")  # fmt: skip
    print("| what | seconds | faces/s |")
    print("|---|---:|---:|")
    print(f"| network alone (LR in memory) | {net_s:.1f} | {n / net_s:.1f} |")
    print(f"| `upscale` end to end (decode, chain, network, PNGs, manifest) | {job_s:.1f} | "
          f"{n / job_s:.1f} |")  # fmt: skip
    print(f"\nend to end / network alone: {net_s / job_s:.0%} (per repeat: "
          f"{', '.join(f'{a / b:.0%}' for a, b in zip(net_times, job_times))})")  # fmt: skip


if __name__ == "__main__":
    main()
