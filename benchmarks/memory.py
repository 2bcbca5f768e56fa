"""Peak memory and throughput of `progface upscale` and `progface bench` as the folder grows.

    python benchmarks/memory.py --faces DIR [--sizes 100,2000] [--bench 900] [--threads 1]

For each size N, a temporary folder of N symbolic links to the first N faces of ``--faces``
is upscaled (``ours``, ``--precision auto``) in a fresh process; ``--bench N`` also runs
``progface bench --methods ours,bicubic`` on N faces. Each command runs in its own child
process, whose peak resident memory (``ru_maxrss`` of that child alone) and wall time are
reported with images per second. Streaming (decode a batch ahead, write a batch behind) keeps
the peak flat as N grows; the figures show whether it does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# run a command and print its own peak RSS: a grandchild's figure is not mixed with others'
_MEASURE = (
    "import resource, subprocess, sys, json;"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode;"
    "print(json.dumps({'rc': rc, 'peak_mb': "
    "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))"
)


def measure(command: list[str], env: dict[str, str]) -> dict:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _MEASURE, *command], capture_output=True,
                         text=True, env=env, check=True)  # fmt: skip
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    facts["seconds"] = time.perf_counter() - started
    if facts["rc"] != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {facts['rc']}")
    return facts


def linked_folder(faces: list[Path], root: Path) -> Path:
    folder = root / f"faces{len(faces)}"
    folder.mkdir()
    for face in faces:
        (folder / face.name).symlink_to(face.resolve())
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--faces", required=True, type=Path)
    parser.add_argument("--sizes", default="100,2000")
    parser.add_argument("--bench", type=int, default=0, help="faces for the bench run (0: none)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from progface.io.images import list_images

    faces = list_images(args.faces)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    cli = [sys.executable, "-m", "progface"]
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{args.threads} thread(s)\n")  # fmt: skip
    print("| job | faces | peak RSS (MB) | wall (s) | images/s |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for n in [int(s) for s in args.sizes.split(",")]:
            folder = linked_folder(faces[:n], root)
            r = measure([*cli, "upscale", str(folder), "-o", str(root / f"up{n}"),
                         "--device", "cpu"], env)  # fmt: skip
            print(f"| upscale (ours, auto precision) | {n} | {r['peak_mb']:.0f} | "
                  f"{r['seconds']:.1f} | {n / r['seconds']:.1f} |", flush=True)  # fmt: skip
        if args.bench:
            (root / "b").mkdir()
            folder = linked_folder(faces[: args.bench], root / "b")
            r = measure([*cli, "bench", "--methods", "ours,bicubic", "--data", str(folder),
                         "--out", str(root / "bench"), "--device", "cpu"], env)  # fmt: skip
            print(f"| bench ours,bicubic (psnr, ssim, ms-ssim) | {args.bench} | "
                  f"{r['peak_mb']:.0f} | {r['seconds']:.1f} | "
                  f"{args.bench / r['seconds']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
