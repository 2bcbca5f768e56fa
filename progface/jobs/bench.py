"""``progface bench``: every method on every face of a folder, under one evaluation protocol.

The LR input of each face is made by the paper's chain from its HR image. Writes
``results.csv`` (one row per image x method x metric, per-image values), ``summary.json``
(the protocol's figures with data, weights, versions and date) and ``comparison.png`` (HR | LR |
one column per method), and with ``report="html"`` ``report.html`` (:mod:`progface.jobs.report`);
returns the Markdown table that the command prints.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from progface import plugins
from progface.data.errors import ImageError
from progface.io.atomic import output_folder, write_atomic, write_text_atomic
from progface.io.figures import grid, save_atomic
from progface.io.inputs import load_face, scan_folder
from progface.io.prefetch import prefetch
from progface.jobs.report import check_report, write_report
from progface.jobs.runtime import (
    check_takes_weights,
    load_method,
    method_spec,
    pick_device,
    run_facts,
)
from progface.metrics.protocols import (
    PSNR_CAP_DB,  # identical images: infinite PSNR, capped in means
)
from progface.weights import WeightsError

PROTOCOLS = ("standard", "pfsr")
DEFAULT_METRICS = ("psnr", "ssim", "ms-ssim")


@dataclass
class BenchResult:
    protocol: str
    data: str
    images: int
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        metrics = list(next(iter(self.summary.values()), {}).keys() - {"images", "seconds"})
        metrics = [m for m in (*DEFAULT_METRICS, *sorted(metrics)) if m in metrics]
        metrics = list(dict.fromkeys(metrics))
        head = [_metric_title(m) for m in metrics]
        lines = [
            f"Protocol: {self.protocol} | data: {self.data} | images: {self.images}",
            "",
            "| method | " + " | ".join(head) + " | images |",
            "|---|" + "---:|" * (len(head) + 1),
        ]
        for name, row in self.summary.items():
            cells = [_fmt(m, row[m]) for m in metrics]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {row['images']} |")
        lines += [f"| {name} | not run: {why} |" for name, why in self.not_run.items()]
        return "\n".join(lines + [""] + [f"- {n}" for n in self.notes])


def _metric_title(name: str) -> str:
    spec = plugins.get("metrics", name)
    title = {"psnr": "PSNR", "ssim": "SSIM", "ms-ssim": "MS-SSIM"}.get(spec.name, spec.name)
    return f"{title} ({spec.unit})" if spec.unit else title


def _fmt(metric: str, value: float) -> str:
    return f"{value:.2f}" if metric == "psnr" else f"{value:.4f}"


def _mean(values: list[float]) -> float:
    return sum(min(v, PSNR_CAP_DB) for v in values) / len(values)


def face_batches(paths: list[Path], crop: str, batch_size: int, limit: int | None = None):
    """Per batch: ``(names, paths, hr [B,3,128,128], lr [B,3,16,16], skipped)`` of up to
    ``batch_size`` readable faces, stopping after ``limit`` readable faces; ``skipped`` lists
    the unreadable files met on the way (``{"file", "reason"}``)."""
    taken = 0
    batch: list[tuple[Path, dict]] = []
    skipped: list[dict[str, str]] = []
    for path in paths:
        if limit is not None and taken >= limit:
            break
        try:
            face = load_face(path, crop, need_hr=True)
        except ImageError as err:
            skipped.append({"file": str(path), "reason": err.reason})
            continue
        batch.append((path, face))
        taken += 1
        if len(batch) == batch_size:
            yield _stacked(batch, skipped)
            batch, skipped = [], []
    if batch or skipped:
        yield _stacked(batch, skipped)


def _stacked(batch: list[tuple[Path, dict]], skipped: list[dict[str, str]]):
    if not batch:
        return [], [], None, None, skipped
    hr = torch.stack([f["hr"] for _, f in batch])
    lr = torch.stack([f["lr"] for _, f in batch])
    return [p.name for p, _ in batch], [p for p, _ in batch], hr, lr, skipped


class FaceFiles:
    """Faces of the bench read again on demand (the report's few faces): ``hr[i]``,
    ``lr[[i, j]]`` decode just those files. Views made with :meth:`view` share the decoded
    faces, so the HR and the LR of one file cost one decode."""

    def __init__(self, paths: list[Path], crop: str, key: str, _decoded=None) -> None:
        self.paths, self.crop, self.key = paths, crop, key
        self._decoded: dict[int, dict] = {} if _decoded is None else _decoded

    def view(self, key: str) -> FaceFiles:
        return FaceFiles(self.paths, self.crop, key, self._decoded)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index):
        if isinstance(index, int):
            if index not in self._decoded:
                self._decoded[index] = load_face(self.paths[index], self.crop, need_hr=True)
            return self._decoded[index][self.key]
        return torch.stack([self[int(i)] for i in index])


def _skip_summary(skipped: list[dict[str, str]], show: int = 3) -> str:
    """`` (N skipped: a.png: why; ...)`` for an error message; "" when nothing was skipped."""
    if not skipped:
        return ""
    why = "; ".join(f"{Path(s['file']).name}: {s['reason']}" for s in skipped[:show])
    more = f"; {len(skipped) - show} more" if len(skipped) > show else ""
    return f" ({len(skipped)} skipped: {why}{more})"


def run_bench(
    methods: list[str],
    data: str | Path,
    protocol: str = "standard",
    out: str | Path | None = None,
    metrics: tuple[str, ...] = DEFAULT_METRICS,
    weights: dict[str, str] | None = None,
    crop: str = "none",
    limit: int | None = None,
    batch_size: int = 16,
    device: str = "auto",
    figure_faces: int = 6,
    progress: bool = True,
    extra_rows: list[tuple[str, str, str | Path]] | None = None,
    precision: str | None = None,
    report: str | None = None,
    runtime: str = "torch",
) -> BenchResult:
    """Benchmark ``methods`` on the faces in ``data``; writes result files when ``out`` is set.

    ``extra_rows`` adds rows ``(label, method, weights)``: a method with other weights, e.g. the
    run folders of an ablation (``progface.jobs.bench_ablation``). ``report="html"`` also writes
    ``out/report.html`` (needs ``out``). ``runtime``: ``torch``, ``torch-compile`` or
    ``onnxruntime`` (the networks' ONNX exports; :func:`progface.jobs.runtime.load_method`).
    """
    check_report(report, out)
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r} (known: {', '.join(PROTOCOLS)})")
    weights = weights or {}
    specs = [method_spec(m) for m in methods]  # unknown names fail before any work
    entries = [(s.name, s.name, weights.get(s.name)) for s in specs] + [
        (label, method_spec(m).name, w) for label, m, w in extra_rows or []
    ]
    labels = [e[0] for e in entries]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two bench rows share a name: {sorted(labels)}")
    metric_specs = [plugins.get("metrics", m) for m in metrics]
    for name, path in weights.items():
        if name not in [s.name for s in specs]:
            raise ValueError(f"--weights names method {name!r}, which is not in --methods")
        check_takes_weights(method_spec(name), path, f"--weights {name}={path}")
    device = pick_device(device)
    data = Path(data)
    paths = scan_folder(data)[0]  # other files (csv, txt) are not faces: not reported
    created = out is not None and not Path(out).exists()
    if out is not None:
        output_folder(out)  # a file or a read-only folder fails before any method runs
    result = BenchResult(protocol, str(data), 0)
    facts: dict[str, Any] = {}
    runs: dict[str, _MethodRun] = {}
    for name, method, path in entries:
        try:
            model, facts[name] = load_method(method, device, path, precision, runtime)
        except Exception as err:  # one failing method must not lose the others' results
            _not_run(result, facts, runs, name, method, err)
            continue
        runs[name] = _MethodRun(name, method, model, protocol, metric_specs)
    names: list[str] = []
    read: list[Path] = []
    shown_hr, shown_lr = [], []
    total = len(paths) if limit is None else min(limit, len(paths))
    bar = tqdm(total=total, desc="bench", unit="img", disable=not progress)
    # one pass over the faces, every method on each batch: each file is decoded once, the next
    # batch while this one runs, and memory holds a few batches whatever the folder's size
    with torch.inference_mode():
        for batch_names, batch_paths, hr, lr, bad in prefetch(
            face_batches(paths, crop, batch_size, limit)
        ):
            result.skipped += bad
            bar.update(len(batch_names) + len(bad))
            if not batch_names:
                continue
            names += batch_names
            read += batch_paths
            if len(shown_hr) < figure_faces:
                shown_hr += list(hr[: figure_faces - len(shown_hr)])
                shown_lr += list(lr[: figure_faces - len(shown_lr)])
            for name, run in list(runs.items()):
                try:
                    run.update(batch_names, hr, lr, device, figure_faces)
                except Exception as err:
                    _not_run(result, facts, runs, name, run.method, err)
    bar.close()
    if not names:
        if created:  # nothing to write: leave no empty folder behind
            Path(out).rmdir()
        raise ImageError(data, f"no readable face images{_skip_summary(result.skipped)}")
    result.images = len(names)
    rows: list[dict[str, Any]] = []
    shown: dict[str, torch.Tensor] = {}
    for name, run in runs.items():
        result.summary[name], method_rows, shown[name] = run.finish()
        rows += method_rows
    result.notes = _notes(protocol, 128)
    if out is not None:
        figure_hr = torch.stack(shown_hr)
        figure_lr = torch.stack(shown_lr)
        _write(Path(out), result, rows, facts, figure_hr, figure_lr, shown, device)
    if out is not None and report is not None:

        def rerun(label: str, faces: torch.Tensor) -> torch.Tensor:  # the report's few faces
            with torch.inference_mode():  # the models that ran, still loaded
                return runs[label].model(faces.to(device)).float().cpu().clamp(0, 1)

        hr_files = FaceFiles(read, crop, "hr")
        lr_files = hr_files.view("lr")
        write_report(Path(out), result, rows, names, hr_files, lr_files, rerun)
    return result


def _not_run(result, facts, runs, name: str, method: str, err: Exception) -> None:
    """Record why ``name`` has no row (loading or running failed) and drop it."""
    if isinstance(err, (KeyboardInterrupt, SystemExit)) or os.environ.get("PROGFACE_DEBUG") == "1":
        raise err
    result.not_run[name] = _failure(name, method, err)
    facts.pop(name, None)
    runs.pop(name, None)
    print(f"progface bench: {name!r} skipped: {result.not_run[name]}", file=sys.stderr)


def _failure(name: str, method: str, err: Exception) -> str:
    """Why a row was not run, on one line, naming the method's plugin."""
    plugin = method_spec(method).plugin
    what = "" if isinstance(err, WeightsError) else f"{type(err).__name__}: "
    text = " ".join(str(err).split()) or type(err).__name__
    return f"{what}{text} (method {method!r} of plugin {plugin!r})"


class _MethodRun:
    """One method's scores, batch by batch; its rows count only once it ran on every face."""

    def __init__(self, name, method, model, protocol, metric_specs) -> None:
        self.name, self.method, self.model = name, method, model
        self.metric_specs = metric_specs
        self.pfsr = _pfsr_protocol() if protocol == "pfsr" else None
        self.per_image: dict[str, list[float]] = {m.name: [] for m in metric_specs}
        self.names: list[str] = []
        self.shown: list[torch.Tensor] = []
        self.seconds = 0.0

    def update(self, names, hr, lr, device, figure_faces: int) -> None:
        started = time.perf_counter()
        sr = self.model(lr.to(device)).float().cpu()
        if tuple(sr.shape) != tuple(hr.shape):
            raise ValueError(f"returned shape {tuple(sr.shape)}, expected {tuple(hr.shape)}")
        if self.pfsr is not None:
            self.pfsr.update(sr, hr)
        sr = sr.clamp(0, 1)
        for m in self.metric_specs:
            self.per_image[m.name] += [float(v) for v in m.fn(sr, hr)]
        if len(self.shown) < figure_faces:
            self.shown += list(sr[: figure_faces - len(self.shown)])
        self.names += names
        self.seconds += time.perf_counter() - started

    def finish(self):
        """(summary, csv rows, figure faces)"""
        rows = [
            {"image": n, "method": self.name, "metric": m.name, "value": v}
            for m in self.metric_specs
            for n, v in zip(self.names, self.per_image[m.name])
        ]
        per_image = self.per_image
        if self.pfsr is not None:
            summary = {
                k: v for k, v in self.pfsr.compute().items() if k in ("psnr", "ssim", "ms_ssim")
            }
            summary = {k.replace("_", "-"): v for k, v in summary.items()}
            # metrics the protocol does not define (e.g. nme) keep their per-image means
            summary |= {m: _mean(v) for m, v in per_image.items() if m not in summary}
        else:
            summary = {m: _mean(v) for m, v in per_image.items()}
        stats = {**summary, "images": len(self.names), "seconds": self.seconds}
        return stats, rows, torch.stack(self.shown)


def _pfsr_protocol():
    from progface.metrics.pfsr_protocol import PfsrProtocol

    return PfsrProtocol(batch_size=16)


def _notes(protocol: str, size: int) -> list[str]:
    if protocol == "pfsr":
        return [
            "pfsr protocol: the authors' eval.py (batches of 16, per-batch PSNR, float64, no "
            "clamp, their SSIM and MS-SSIM windows 11/11/11/11/8 with the last-level exponent "
            "quirk); comparable with the paper's tables"
        ]
    from progface.metrics.quality import ms_ssim_kernel_for

    return [
        f"standard protocol: per-image RGB metrics on clamped [0, 1] images, mean over images; "
        f"SSIM kernel 11 (sigma 1.5), MS-SSIM kernel {ms_ssim_kernel_for(size)} at {size} px "
        "(5 scales need 161 px for kernel 11)"
    ]


def _write(out, result, rows, facts, hr, lr, shown, device) -> None:
    out.mkdir(parents=True, exist_ok=True)

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["image", "method", "metric", "value"])
            writer.writeheader()
            writer.writerows(rows)

    write_atomic(out / "results.csv", write_csv)
    summary = {
        "protocol": result.protocol,
        "data": result.data,
        "images": result.images,
        "methods": {n: {**s, **facts.get(n, {})} for n, s in result.summary.items()},
        "not_run": result.not_run,
        "skipped": result.skipped,
        "notes": result.notes,
        "run": run_facts(device),
    }
    summary = json.loads(json.dumps(summary, default=str), parse_constant=lambda c: None)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2, allow_nan=False))
    if shown:
        faces = [[hr[i], lr[i], *(s[i] for s in shown.values())] for i in range(len(hr))]
        save_atomic(grid(faces, ["HR", "LR 16px", *shown]), out / "comparison.png")
