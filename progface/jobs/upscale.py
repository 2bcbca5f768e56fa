"""``progface upscale``: a folder of face images in, 128x128 super-resolved faces out.

Writes ``OUT/sr/<name>.png``, ``OUT/compare/<name>.png`` (LR | bicubic | SR) and
``OUT/manifest.json``. Never writes into the input folder, keeps existing outputs unless
``overwrite``, writes every file atomically, and skips (and reports) files it cannot read.
Faces stream through in batches (decoded ahead, written behind): memory stays flat as the
folder grows.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from progface.data.errors import ImageError
from progface.io.atomic import output_folder, write_new, write_text_atomic
from progface.io.figures import grid, save_atomic, to_pil
from progface.io.inputs import load_face, scan_folder
from progface.io.prefetch import prefetch
from progface.jobs.runtime import load_method, pick_device, run_facts
from progface.models.interpolate import Interpolate


class OutputInsideInputError(ValueError):
    """The output folder is the input folder or inside it."""


def output_names(paths: list[Path]) -> dict[Path, str]:
    """A unique ``.png`` name per input (unique by construction, also on case-insensitive disks).

    ``<stem>.png``; inputs sharing a stem (a.jpg, a.png) keep their suffix (``a_jpg.png``); a
    name still taken by another input (``a_png.png`` from a.png and from a_png.png) gets
    ``-2``, ``-3`` ... in the inputs' sorted order.
    """
    stems = Counter(p.stem.casefold() for p in paths)
    wanted = {
        p: p.stem if stems[p.stem.casefold()] == 1 else f"{p.stem}_{p.suffix.lstrip('.')}"
        for p in paths
    }
    taken = {w.casefold() for w in wanted.values()}
    given: set[str] = set()
    names = {}
    for p in sorted(paths):
        name, n = wanted[p], 1
        # numbered names skip the names other inputs want as they are
        while name.casefold() in given or (n > 1 and name.casefold() in taken):
            n += 1
            name = f"{wanted[p]}-{n}"
        given.add(name.casefold())
        names[p] = f"{name}.png"
    return {p: names[p] for p in paths}


def upscale_folder(
    src: str | Path,
    out: str | Path,
    method: str | None = None,
    crop: str = "center",
    weights: str | Path | None = None,
    overwrite: bool = False,
    device: str = "auto",
    batch_size: int = 16,
    progress: bool = True,
    precision: str = "auto",
) -> dict[str, Any]:
    """Super-resolve every face image in ``src`` into ``out``; returns the manifest.

    ``precision`` (``auto``, ``fp32``, ``bf16``, ``fp16``): the network runs folded for
    inference at that precision; ``auto`` is bf16 where the device computes it natively
    (``progface.jobs.runtime.pick_precision``). The manifest records what ran."""
    src, out = Path(src), Path(out)
    images, others = scan_folder(src)
    if out.resolve() == src.resolve() or src.resolve() in out.resolve().parents:
        raise OutputInsideInputError(
            f"{out}: the output folder must not be the input folder or inside it"
        )
    output_folder(out, "-o/--out")  # a file or a read-only folder fails before any work
    device = pick_device(device)
    if method is None:
        from progface import plugins

        defaults = plugins.default_methods("upscale")
        if not defaults:
            raise ValueError("no method is registered as upscale's default: name one with --method")
        method = defaults[0]
    model, facts = load_method(method, device, weights, precision=precision)
    bicubic = Interpolate(mode="bicubic", size=128)
    names = output_names(images)
    entries: list[dict[str, Any]] = [
        {"input": str(p), "status": "skipped", "reason": why} for p, why in others
    ]
    todo: list[Path] = []
    for path in images:
        targets = [out / "sr" / names[path], out / "compare" / names[path]]
        existing = [str(t) for t in targets if t.exists()]
        if not overwrite and existing:
            entries.append(_kept(path, existing))
            continue
        todo.append(path)
    bar = tqdm(total=len(todo), desc=f"upscale ({method})", unit="img", disable=not progress)
    # decoding runs one batch ahead and writing one batch behind the network, in threads:
    # memory holds a few batches whatever the folder's size
    written: deque[Future] = deque()
    with torch.inference_mode(), ThreadPoolExecutor(1, "progface-write") as writer:
        for chunk, skipped in prefetch(_lr_batches(todo, crop, batch_size)):
            entries += skipped
            if chunk:
                lr = torch.stack([t for _, t in chunk]).to(device)
                sr, bic = model(lr).float().clamp(0, 1).cpu(), bicubic(lr.cpu())
                written.append(writer.submit(
                    _write_batch, chunk, sr, bic, method, out, names, overwrite
                ))  # fmt: skip
            while len(written) > 1:
                entries += written.popleft().result()
            bar.update(len(chunk) + len(skipped))
        for job in written:
            entries += job.result()
    bar.close()
    manifest = {
        **facts,
        "input_folder": str(src),
        "crop": crop,
        "counts": dict(Counter(e["status"] for e in entries)),
        "files": sorted(entries, key=lambda e: e["input"]),
        "run": run_facts(device),
    }
    text = json.dumps(manifest, indent=2)
    if overwrite:
        path = write_text_atomic(out / "manifest.json", text)
    else:  # an earlier run's manifest (or a user's file) is kept: manifest-2.json ...
        path = write_new(out / "manifest.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    manifest["manifest"] = str(path)
    return manifest


def _lr_batches(paths: list[Path], crop: str, batch_size: int):
    """Per ``batch_size`` inputs: ``([(path, lr [3,16,16])], [skip entries])``."""
    for start in range(0, len(paths), batch_size):
        chunk, skipped = [], []
        for path in paths[start : start + batch_size]:
            try:
                chunk.append((path, load_face(path, crop)["lr"]))
            except ImageError as err:
                skipped.append({"input": str(path), "status": "skipped", "reason": err.reason})
        yield chunk, skipped


def _write_batch(chunk, sr, bic, method: str, out: Path, names: dict, overwrite: bool) -> list:
    """The sr/ and compare/ images of one batch; their manifest entries."""
    entries = []
    for (path, lr_img), sr_img, bic_img in zip(chunk, sr, bic):
        panel = grid([[lr_img, bic_img, sr_img]], ["LR 16px", "bicubic", f"SR ({method})"])
        files = {"sr": to_pil(sr_img), "compare": panel}
        entries.append(_save_outputs(path, files, out, names[path], overwrite))
    return entries


def _kept(path: Path, existing: list[str]) -> dict[str, Any]:
    reason = f"outputs exist, not replaced without --overwrite: {', '.join(existing)}"
    return {"input": str(path), "status": "kept", "reason": reason}


def _save_outputs(path: Path, files: dict, out: Path, name: str, overwrite: bool) -> dict:
    """Save the sr/ and compare/ images of one input; a file that appeared meanwhile is kept."""
    entry: dict[str, Any] = {"input": str(path), "status": "written"}
    for folder, image in files.items():
        try:
            entry[folder] = str(save_atomic(image, out / folder / name, overwrite=overwrite))
        except FileExistsError:  # keep what this run wrote before it, say which it kept
            return _kept(path, [str(out / folder / name)]) | {k: entry[k] for k in entry
                                                              if k in files}  # fmt: skip
    return entry
