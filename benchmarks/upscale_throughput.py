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


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--faces", required=True, type=Path)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--method", default="ours")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    # where the job writes: the disk counts (creating a file took 0.12-0.87 ms on the 2-core
    # machine, in /tmp or on its work disk, the same ext4 volume, depending on the hour)
    parser.add_argument("--scratch", type=Path, default=Path("."))
    return parser.parse_args(argv)


def measure(faces: Path, n: int = 400, batch: int = 64, threads: int = 2, method: str = "ours",
            precision: str = "auto", repeats: int = 3, scratch: Path = Path(".")) -> dict:  # fmt: skip
    """The network alone and the whole job on the first ``n`` faces of ``faces``, alternately
    ``repeats`` times after one warm-up each: ``{"faces", "net_s": [...], "job_s": [...],
    "network_faces_per_s", "job_faces_per_s", "ratio", "ratios", "method", "precision"}``
    (medians; ``ratios``: each repeat's)."""
    torch.set_num_threads(threads)
    from progface.io.inputs import load_face, scan_folder
    from progface.jobs.runtime import load_method
    from progface.jobs.upscale import upscale_folder

    paths = scan_folder(faces)[0][:n]
    lr = torch.stack([load_face(p, "center")["lr"] for p in paths])
    model, facts = load_method(method, "cpu", precision=precision)

    def network() -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            for i in range(0, len(lr), batch):
                model(lr[i : i + batch]).float().clamp(0, 1)
        return time.perf_counter() - start

    network()  # warm-up
    net_times, job_times = [], []
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".upscale-throughput-") as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        for p in paths:
            (src / p.name).symlink_to(p.resolve())

        def job(out: Path) -> float:
            start = time.perf_counter()
            upscale_folder(src, out, method=method, precision=precision, batch_size=batch,
                           device="cpu", progress=False)  # fmt: skip
            return time.perf_counter() - start

        job(Path(tmp) / "warm")
        for k in range(repeats):
            net_times.append(network())
            job_times.append(job(Path(tmp) / f"out{k}"))
    net_s, job_s = statistics.median(net_times), statistics.median(job_times)
    return {
        "faces": len(paths), "batch": batch, "threads": threads, "net_s": net_times,
        "job_s": job_times, "network_faces_per_s": len(paths) / net_s,
        "job_faces_per_s": len(paths) / job_s, "ratio": net_s / job_s,
        "ratios": [a / b for a, b in zip(net_times, job_times)],
        "method": facts["method"], "precision": facts.get("precision"),
    }  # fmt: skip


def main(argv=None) -> None:
    args = parse_args(argv)
    r = measure(args.faces, args.n, args.batch, args.threads, args.method, args.precision,
                args.repeats, args.scratch)  # fmt: skip
    n = r["faces"]
    print(f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{args.threads} threads, method {r['method']} at {r['precision']}, "
          f"batch {args.batch}, {n} faces, median of {args.repeats}, outputs under "
          f"{args.scratch.resolve()}\n")  # fmt: skip
    print("| what | seconds | faces/s |")
    print("|---|---:|---:|")
    print(f"| network alone (LR in memory) | {n / r['network_faces_per_s']:.1f} | "
          f"{r['network_faces_per_s']:.1f} |")  # fmt: skip
    print(f"| `upscale` end to end (decode, chain, network, PNGs, manifest) | "
          f"{n / r['job_faces_per_s']:.1f} | {r['job_faces_per_s']:.1f} |")  # fmt: skip
    print(f"\nend to end / network alone: {r['ratio']:.0%} (per repeat: "
          f"{', '.join(f'{x:.0%}' for x in r['ratios'])})")  # fmt: skip


if __name__ == "__main__":
    main()
