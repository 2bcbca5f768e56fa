"""Inference speed of ``ours`` on this machine: every optimised path against the plain eager
fp32 NCHW generator (the authors' way) and the machine's matmul/conv peak, in one run.

    python benchmarks/speed.py --threads 2 --batches 1,64 --repeats 5
    python benchmarks/speed.py --repeats 1 --batches 1 --matmul-size 256   # smoke test

Each path runs in its own process (spawned), so its peak memory is its own; all paths use the
same weights (``--weights``, else the cached ``ours`` weights, else random weights, seed 0).
Times are medians of ``--repeats`` calls after ``--warmup`` calls. The generator's FLOPs are
counted by ``torch.utils.flop_counter`` (2 x conv MACs, step 3); its GFLOP/s is compared with a
square matmul of the same precision and with a large 3x3 convolution (the peak is the better
of the two: on the 2-core AMD EPYC VM fp32 BLAS matmul stayed well below oneDNN's 3x3 conv).
Writes ``results/speed-<device>-<date>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import multiprocessing
import os
import platform
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
PATHS = {
    # name: (precision, channels_last, fold, compile); "reference" and "onnxruntime" are special
    "reference": None,
    "folded": ("fp32", False, True, False),
    "folded+cl": ("fp32", True, True, False),
    "bf16+cl": ("bf16", True, True, False),
    "compiled+cl": ("fp32", True, True, True),
    "compiled+bf16+cl": ("bf16", True, True, True),
    "onnxruntime": None,
}
FULL = (512, 256, 128, 64)
PRECISION = {"reference": "fp32", "onnxruntime": "fp32"} | {
    name: spec[0] for name, spec in PATHS.items() if spec
}


def load_model(args, device: str):
    """``(ProgressiveSR, description)`` on ``device``; random weights when none are given."""
    from progface.builtin.paper import load_ours
    from progface.models.progressive import ProgressiveConfig, ProgressiveGenerator, ProgressiveSR

    if args.weights:
        return load_ours(args.weights, device), args.weights
    torch.manual_seed(0)
    generator = ProgressiveGenerator(config=ProgressiveConfig(channels=args.channels))
    what = "random (seed 0)" + (f", channels {args.channels}" if args.channels != FULL else "")
    return ProgressiveSR(generator).to(device).eval(), what


def _memory_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last reset) of this process, in MB."""
    status = Path("/proc/self/status")
    if not status.exists():  # not Linux: the process's peak, never reset
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    line = next(x for x in status.read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def _reset_peak() -> None:
    # Linux: writing 5 to clear_refs resets VmHWM to the current RSS (so each batch has its own)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _build(path: str, model, args, onnx_file: str | None):
    """A callable ``lr -> sr`` (torch tensors) for ``path``, plus a note (e.g. compile fallback)."""
    if path == "reference":

        def run(lr):
            with torch.no_grad():
                return model(lr)

        return run
    if path == "onnxruntime":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = onnxruntime.InferenceSession(onnx_file, options, ["CPUExecutionProvider"])
        return lambda lr: torch.from_numpy(session.run(None, {"lr": lr.numpy()})[0])
    from progface.models.inference import optimize_for_inference

    precision, channels_last, _, compile_ = PATHS[path]
    if precision == "bf16" and args.device == "cuda" and args.cuda_fp16:
        precision = "fp16"
    return optimize_for_inference(
        model, precision=precision, channels_last=channels_last, compile=compile_
    )


def measure(path: str, args, onnx_file: str | None) -> dict:
    """Runs in a child process: times ``path`` at every batch size; memory; error vs reference."""
    torch.set_num_threads(args.threads)
    model, _ = load_model(args, args.device)
    run = _build(path, model, args, onnx_file)
    result = {"path": path, "threads": torch.get_num_threads()}
    gen = torch.Generator().manual_seed(1)
    result["batches"] = {}
    for batch in args.batches:
        lr = torch.rand(batch, 3, 16, 16, generator=gen).to(args.device)
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        row = {"rss_base_mb": _memory_mb("VmRSS")}
        _reset_peak()
        started = time.perf_counter()
        for _ in range(args.warmup):
            run(lr)
        _sync(args.device)
        warmup_s = time.perf_counter() - started
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            run(lr)
            _sync(args.device)
            times.append(time.perf_counter() - t)
        row["peak_rss_mb"] = _memory_mb("VmHWM")
        row |= {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}
        row["warmup_s"] = warmup_s
        if args.device == "cuda":
            row["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
        result["batches"][str(batch)] = row
    result |= agreement(model, run, args, gen)
    error = getattr(run, "compile_error", None)
    result["note"] = f"compile fell back to eager: {error}" if error else None
    return result


def measure_upscale(args) -> dict:
    """Runs in a child process: ``upscale_throughput.measure`` at the largest batch, with its
    peak memory (the job's and the network-alone loop's, one process)."""
    from upscale_throughput import measure as throughput

    result = throughput(Path(args.faces), n=args.upscale, batch=max(args.batches),
                        threads=args.threads, repeats=args.repeats, scratch=args.scratch)  # fmt: skip
    return result | {"peak_rss_mb": _memory_mb("VmHWM")}


def _gflops(fn, flop: float, args) -> tuple[float, float]:
    """``(best, median)`` GFLOP/s of ``fn`` over the repeats: the best is the limit (a shared
    machine only ever slows a call down)."""
    for _ in range(max(args.warmup, 1)):
        fn()
    times = []
    for _ in range(max(args.repeats, 10)):
        _sync(args.device)
        t = time.perf_counter()
        fn()
        _sync(args.device)
        times.append(time.perf_counter() - t)
    return flop / min(times) / 1e9, flop / statistics.median(times) / 1e9


def agreement(model, run, args, gen) -> dict:
    """Max abs difference to the reference and, on ``--faces``, the PSNR change (dB)."""
    from progface.metrics.quality import psnr

    if args.faces_file:
        faces = torch.load(args.faces_file)
        lr, hr = faces["lr"].to(args.device), faces["hr"].to(args.device)
    else:
        lr, hr = torch.rand(4, 3, 16, 16, generator=gen).to(args.device), None
    outs, refs = [], []
    for i in range(0, len(lr), 16):  # bounded memory on any number of faces
        with torch.no_grad():
            refs.append(model(lr[i : i + 16]).float())
        outs.append(run(lr[i : i + 16]).float())
    out, ref = torch.cat(outs), torch.cat(refs)
    facts = {"max_abs_diff_vs_reference": float((out - ref).abs().max()), "faces": len(lr)}
    if hr is not None:
        facts["psnr_db"] = float(psnr(out.clamp(0, 1), hr).mean())
        facts["psnr_change_db"] = facts["psnr_db"] - float(psnr(ref.clamp(0, 1), hr).mean())
    return facts


def load_faces(folder: str, limit: int) -> str:
    """The first ``limit`` faces of ``folder`` as HR and the paper's LR, saved for the workers."""
    from progface.io.inputs import load_face, scan_folder

    paths = scan_folder(folder)[0][:limit]
    faces = [load_face(p, crop="none", need_hr=True) for p in paths]
    file = Path(tempfile.mkdtemp()) / "faces.pt"
    torch.save({k: torch.stack([f[k] for f in faces]) for k in ("lr", "hr")}, file)
    return str(file)


def hardware_limits(dtype: torch.dtype, args) -> dict:
    """GFLOP/s ``(best, median)`` of a square ``--matmul-size`` matmul (2 n^3 FLOPs) and, since
    BLAS and the convolution library need not reach the same peak, of a large 3x3 convolution
    (256 -> 256 channels, 64 x 64, channels_last)."""
    n, dev = args.matmul_size, args.device
    a, b = (torch.randn(n, n, device=dev).to(dtype) for _ in range(2))
    x = torch.randn(1, 256, 64, 64, device=dev).to(dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3, device=dev).to(dtype)
    with torch.no_grad():
        return {
            "matmul": _gflops(lambda: a @ b, 2 * n**3, args),
            "conv3x3": _gflops(lambda: F.conv2d(x, w, padding=1), 2 * 64 * 64 * 256**2 * 9, args),
        }


def generator_flops(model) -> int:
    """FLOPs of one 16 px face at step 3 (convolutions: 2 x MACs)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.rand(1, 3, 16, 16))
    return counter.get_total_flops()


def machine_facts(args) -> dict:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    ) if Path("/proc/cpuinfo").exists() else platform.processor()  # fmt: skip
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=HERE).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, cwd=HERE).stdout.strip()  # fmt: skip
    facts = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {cpu}, {os.cpu_count()} cores",
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "commit": commit + ("+dirty" if dirty else ""),
        "threads": args.threads,
        "load_average": os.getloadavg(),
        "bf16_cpu_kernels": torch.backends.mkldnn.is_available()
        and torch.ops.mkldnn._is_mkldnn_bf16_supported(),
    }
    try:
        import onnxruntime

        facts["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        facts["onnxruntime"] = None
    return facts


def markdown(report: dict) -> str:
    f = report["facts"]
    lines = [
        f"# Inference speed of `ours`, {f['date']}",
        "",
        f"- machine: {f['machine']}; device {f['device']}; {f['threads']} threads; "
        f"load average {f['load_average'][0]:.1f}",
        f"- torch {f['torch']}, onnxruntime {f['onnxruntime']}, commit {f['commit']}",
        f"- weights: {report['weights']}; {report['gflop_per_image']:.2f} GFLOP per face "
        f"(step 3); median of {report['repeats']} after {report['warmup']} warm-up",
        f"- differences to the reference (and PSNR change, with faces) on {report['check']}",
        *(
            f"- {precision} limits, GFLOP/s best (median): matmul {report['matmul_size']}^2 "
            f"{k['matmul'][0]:.1f} ({k['matmul'][1]:.1f}), conv3x3 {k['conv3x3'][0]:.1f} "
            f"({k['conv3x3'][1]:.1f}); peak = the better best"
            for precision, k in report["limits_gflops"].items()
        ),
        "",
        "| path | batch | ms / batch (min-max) | faces/s | x reference | GFLOP/s | % matmul "
        "| % peak | peak RSS MB (+ over loaded model) | max abs diff | PSNR change dB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['path']} | {row['batch']} | {1e3 * row['median_s']:.1f} "
            f"({1e3 * row['min_s']:.1f}-{1e3 * row['max_s']:.1f}) | {row['faces_per_s']:.1f} | "
            f"{row['speedup']:.2f} | {row['gflops']:.1f} | {100 * row['fraction_of_matmul']:.0f}% | "
            f"{100 * row['fraction_of_peak']:.0f}% | "
            f"{row['peak_rss_mb']:.0f} (+{row['peak_rss_mb'] - row['rss_base_mb']:.0f}) | "
            f"{row['max_abs_diff']:.1e} | {_signed(row['psnr_change_db'])} |"
        )
    up = report.get("upscale")
    if up:
        per_repeat = ", ".join(f"{x:.0%}" for x in up["ratios"])
        lines += [
            "",
            f"`progface upscale` end to end ({up['method']} at {up['precision']}, {up['faces']} "
            f"faces, batch {up['batch']}, {up['threads']} threads; median of "
            f"{len(up['job_s'])}, alternating with the network alone):",
            "",
            "| what | faces/s | peak RSS MB |",
            "|---|---:|---:|",
            f"| network alone (LR in memory) | {up['network_faces_per_s']:.1f} | |",
            f"| `upscale` (decode, chain, network, PNGs, manifest) | {up['job_faces_per_s']:.1f} "
            f"| {up['peak_rss_mb']:.0f} |",
            "",
            f"end to end / network alone: **{up['ratio']:.0%}** (per repeat: {per_repeat})",
            "",
        ]
    lines += [f"- {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4f}"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", help="ours weight file (default: cached ours, else random)")
    p.add_argument("--batches", default="1,64", help="comma-separated batch sizes")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--paths", default=",".join(PATHS), help=f"subset of {','.join(PATHS)}")
    p.add_argument("--faces", help="folder of HR faces: differences and PSNR change on them")
    p.add_argument("--faces-limit", type=int, default=64, help="use the first N faces")
    p.add_argument(
        "--upscale",
        type=int,
        default=0,
        metavar="N",
        help="with --faces: also time `progface upscale` end to end on the first N "
        "faces at the largest batch, against the network alone (shipped ours)",
    )
    p.add_argument(
        "--scratch", type=Path, default=Path("."), help="where --upscale writes (the disk counts)"
    )
    p.add_argument("--matmul-size", type=int, default=2048)
    p.add_argument("--channels", default="512,256,128,64",
                   help="widths of random-weight generators (smaller: smoke tests only)")  # fmt: skip
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--cuda-fp16", action="store_true", help="on CUDA, fp16 instead of bf16")
    p.add_argument("--out", type=Path, default=HERE / "results")
    p.add_argument("--name", help="results file name (default: speed-<device>-<date>)")
    args = p.parse_args(argv)
    args.channels = tuple(int(c) for c in args.channels.split(","))
    args.batches = sorted(int(b) for b in args.batches.split(","))
    args.paths = [name.strip() for name in args.paths.split(",") if name.strip()]
    unknown = set(args.paths) - set(PATHS)
    if unknown:
        p.error(f"unknown paths {sorted(unknown)}; known: {', '.join(PATHS)}")
    if args.weights is None:
        args.weights = _cached_ours()
    return args


def _cached_ours() -> str | None:
    from progface import plugins
    from progface.weights import WeightsError, resolve

    try:
        path = resolve(plugins.get("methods", "ours").weights)
    except WeightsError:
        return None
    return str(path) if Path(path).is_file() else None


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model, weights = load_model(args, "cpu")
    notes = []
    onnx_file = None
    args.faces_file = load_faces(args.faces, args.faces_limit) if args.faces else None
    if "onnxruntime" in args.paths:
        try:
            import onnxruntime  # noqa: F401

            from progface.jobs.export import export_onnx
        except ImportError:
            args.paths.remove("onnxruntime")
            notes.append("onnxruntime not installed: its path was skipped (pip install .[onnx])")
        else:
            onnx_file = str(Path(tempfile.mkdtemp()) / "ours.onnx")
            export_onnx(model, onnx_file)
    if args.device == "cuda":
        args.paths = [p for p in args.paths if p != "onnxruntime"]  # CPU provider only here
    flops = generator_flops(model)
    limits = {name: hardware_limits(dtype, args)
              for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}  # fmt: skip
    matmul = {name: kernels["matmul"][0] for name, kernels in limits.items()}
    peak = {name: max(best for best, _ in kernels.values()) for name, kernels in limits.items()}
    ctx = multiprocessing.get_context("spawn")
    results = {}
    with ctx.Pool(1, maxtasksperchild=1) as pool:  # a fresh process per path
        for path in args.paths:
            print(f"timing {path} ...", flush=True)
            results[path] = pool.apply(measure, (path, args, onnx_file))
    upscale = None
    if args.upscale and args.faces and args.device == "cpu":
        print(f"timing upscale end to end on {args.upscale} faces ...", flush=True)
        with ctx.Pool(1, maxtasksperchild=1) as pool:
            upscale = pool.apply(measure_upscale, (args,))
    elif args.upscale:
        notes.append("--upscale needs --faces and the CPU: not timed")
    rows = []
    for path, res in results.items():
        if res.get("note"):
            notes.append(f"{path}: {res['note']}")
        if PATHS.get(path) and PATHS[path][3]:  # compiled: the warm-up includes compilation
            warm = ", ".join(f"batch {k}: {v['warmup_s']:.1f} s" for k, v in res["batches"].items())
            notes.append(f"{path}: warm-up incl. compilation {warm}")
        for batch, b in res["batches"].items():
            ref = results.get("reference", {}).get("batches", {}).get(batch)
            gflops = flops * int(batch) / b["median_s"] / 1e9
            rows.append({
                "path": path, "batch": int(batch), **b, "faces_per_s": int(batch) / b["median_s"],
                "speedup": ref["median_s"] / b["median_s"] if ref else float("nan"),
                "gflops": gflops, "fraction_of_matmul": gflops / matmul[PRECISION[path]],
                "fraction_of_peak": gflops / peak[PRECISION[path]],
                "max_abs_diff": res["max_abs_diff_vs_reference"], "threads": res["threads"],
                "psnr_change_db": res.get("psnr_change_db"), "faces": res["faces"],
            })  # fmt: skip
    rows.sort(key=lambda r: (r["batch"], list(PATHS).index(r["path"])))
    report = {
        "facts": machine_facts(args), "weights": weights, "gflop_per_image": flops / 1e9,
        "repeats": args.repeats, "warmup": args.warmup, "matmul_size": args.matmul_size,
        "check": f"the first {rows[0]['faces']} faces of {args.faces} (the paper's LR chain)"
        if args.faces else "4 random LR inputs", "limits_gflops": limits, "peak_gflops": peak, "rows": rows, "notes": notes,
        "upscale": upscale,
    }  # fmt: skip
    name = args.name or f"speed-{args.device}-{datetime.datetime.now():%Y%m%d-%H%M}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(markdown(report))
    print(markdown(report))
    print(f"wrote {args.out / name}.json and .md")
    return report


if __name__ == "__main__":
    main()
