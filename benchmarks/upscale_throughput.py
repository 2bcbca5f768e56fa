"""`progface upscale` end to end against the network alone, in one process and one run.

    python benchmarks/upscale_throughput.py --faces DIR [--n 400] [--batch 64] [--threads 2]

Times, after one warm-up each, (1) the method alone on the LR faces already in memory, in
batches of ``--batch`` (what the network can do), and (2) ``upscale_folder`` on the same N
files into an empty folder (decode, degradation chain, network, PNG writing of ``sr/`` and
``compare/``, manifest), with the same method, precision and batch size. The ratio is the share
of the network's throughput that the whole job keeps. The model is loaded before either clock
starts (a process's start-up and weight loading are not per-image costs).
"""

from __future__ import annotations

import argparse
import os
import platform
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
    net_s = network()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        for p in paths:
            (src / p.name).symlink_to(p.resolve())
        upscale_folder(src, Path(tmp) / "warm", method=args.method, precision=args.precision,
                       batch_size=args.batch, device="cpu", progress=False)  # fmt: skip
        start = time.perf_counter()
        upscale_folder(src, Path(tmp) / "out", method=args.method, precision=args.precision,
                       batch_size=args.batch, device="cpu", progress=False)  # fmt: skip
        job_s = time.perf_counter() - start
    n = len(paths)
    print(f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{args.threads} threads, method {facts['method']} at {facts.get('precision')}, "
          f"batch {args.batch}, {n} faces\n")  # fmt: skip
    print("| what | seconds | faces/s |")
    print("|---|---:|---:|")
    print(f"| network alone (LR in memory) | {net_s:.1f} | {n / net_s:.1f} |")
    print(f"| `upscale` end to end (decode, chain, network, PNGs, manifest) | {job_s:.1f} | "
          f"{n / job_s:.1f} |")  # fmt: skip
    print(f"\nend to end / network alone: {net_s / job_s:.0%}")


if __name__ == "__main__":
    main()
