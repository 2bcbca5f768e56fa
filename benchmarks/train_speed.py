"""Seconds per training iteration of the paper's recipe on this machine.

Compares with the authors' code measured on a 2-vCPU VM: 63.4 s per iteration at step 3,
batch 16, all losses, 2 threads (reference: official_implementation.md section 11). Records
date, machine, load, torch version and commit; writes a JSON next to this file.

    OMP_NUM_THREADS=2 python benchmarks/train_speed.py --threads 2 --batch 16 --step 3
    python benchmarks/train_speed.py --device cuda --bf16 --channels-last --step 3 --iters 20

The VGG16 and heatmap source have random weights (only their cost matters here). The heatmap
source is the registered ``fan-distilled`` when it can be built, else a same-architecture
stand-in (321,412 parameters, as in the paper).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
AUTHORS_S_PER_IT = 63.4  # step 3, batch 16, all losses, 2 threads, same kind of VM


class DistilledFANStandIn(nn.Module):
    """The distilled FAN's layers (official_implementation.md section 4), random weights."""

    num_landmarks = 68

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 5, padding=2)
        layers: list[nn.Module] = []
        for cin, cout in ((32, 64), (64, 128), (128, 128)):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU()]
        self.layers = nn.Sequential(*layers, nn.Conv2d(128, 68, 3, padding=1), nn.LeakyReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.conv(x))


def heatmap_source(options: dict):
    try:
        from progface import plugins

        source = plugins.get("heatmap_sources", "fan-distilled").build(**options)
        return source, f"fan-distilled {options}" if options else "fan-distilled"
    except Exception as err:  # not registered yet, or its weights are not here
        print(f"fan-distilled unavailable ({err}); using the stand-in", file=sys.stderr)
        return DistilledFANStandIn(), "stand-in (distilled-FAN architecture, random weights)"


def calibration_conv_s() -> float:
    """A fixed conv workload, to compare machine speed between runs."""
    x, w = torch.randn(16, 64, 64, 64), torch.randn(64, 64, 3, 3)
    start = time.perf_counter()
    for _ in range(5):
        torch.nn.functional.conv2d(x, w, padding=1)
    return time.perf_counter() - start


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"platform": platform.platform(), "cpu": cpu, "logical_cpus": os.cpu_count(),
            "python": platform.python_version()}  # fmt: skip


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                              capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--step", type=int, default=3, choices=(1, 2, 3))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="a recipe config override (repeatable)")  # fmt: skip
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from progface.train.config import load_config
    from progface.train.context import Context
    from progface.train.recipes.progressive import ProgressiveRecipe

    iterations = {1: "[100]", 2: "[1, 100]", 3: "[1, 1, 100]"}[args.step]
    cfg = load_config(overrides=[f"options.iterations={iterations}", "options.fade=[0.0, 0.0, 0.0]",
                                 "options.perceptual_weights=random", *args.overrides])  # fmt: skip
    source, source_name = heatmap_source(cfg.options.heatmap_source_options)
    torch.manual_seed(0)
    ctx = Context(torch.device(args.device), bf16=args.bf16, channels_last=args.channels_last)
    recipe = ProgressiveRecipe(cfg, ctx, heatmap_source=source)
    b = args.batch
    batch = {"lr": torch.rand(b, 3, 16, 16), "x32": torch.rand(b, 3, 32, 32),
             "x64": torch.rand(b, 3, 64, 64), "hr": torch.rand(b, 3, 128, 128),
             "landmarks": 32 + 64 * torch.rand(b, 68, 2)}  # fmt: skip
    batch = {k: ctx.images(v) for k, v in batch.items()}
    first = sum(cfg.options.iterations[: args.step - 1])  # an iteration inside the step
    calib_before = calibration_conv_s()
    load_before = os.getloadavg()
    times, cpu_times, terms = [], [], {}
    for i in range(args.warmup + args.iters):
        _sync(args.device)
        start, cpu_start = time.perf_counter(), time.process_time()
        terms = recipe.train_step(batch, first + i)
        _sync(args.device)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        print(f"iteration {i} ({'warm-up' if i < args.warmup else 'timed'}): {elapsed:.2f} s "
              f"wall, {cpu:.2f} s CPU", file=sys.stderr, flush=True)  # fmt: skip
        if i >= args.warmup:
            times.append(elapsed)
            cpu_times.append(cpu)
    result = {
        "benchmark": "train_speed",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit(),
        "torch": torch.__version__,
        "machine": machine(),
        "threads": args.threads,
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "loadavg_before_after": [load_before, os.getloadavg()],
        "calib_conv_s_before_after": [calib_before, calibration_conv_s()],
        "step": args.step,
        "alpha": recipe.state()["alpha"],
        "batch": b,
        "bf16": args.bf16,
        "channels_last": args.channels_last,
        "overrides": args.overrides,
        "losses": sorted(k for k in terms if not k.startswith("d_") and k != "g_total"),
        "heatmap_source": source_name,
        "perceptual_weights": "random",
        "seconds_per_iteration": times,
        "median_s_per_iteration": statistics.median(times),
        # CPU seconds of this process: less sensitive to other processes' load than wall time;
        # on an otherwise idle machine wall ~ CPU / threads
        "cpu_s_per_iteration": cpu_times,
        "median_cpu_s_per_iteration": statistics.median(cpu_times),
        "authors_s_per_iteration": AUTHORS_S_PER_IT,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    if args.device == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    text = json.dumps(result, indent=2)
    print(text)
    name = f"train_speed_step{args.step}_b{b}_" + (
        f"t{args.threads}" if args.device == "cpu" else "cuda"
    )
    out = args.out or HERE / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
