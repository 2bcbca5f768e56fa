"""``progface upscale``: a folder of face images in, 128x128 super-resolved faces out.

Writes ``OUT/sr/<name>.png``, ``OUT/compare/<name>.png`` (LR | bicubic | SR) and
``OUT/manifest.json``. Never writes into the input folder, keeps existing outputs unless
``overwrite``, writes every file atomically, and skips (and reports) files it cannot read.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from progface.data.errors import ImageError
from progface.figures import grid, save_atomic, to_pil
from progface.inputs import load_face, scan_folder
from progface.models.interpolate import Interpolate
from progface.runtime import load_method, pick_device, run_facts

DEFAULT_METHOD = "bicubic"  # until trained weights of the paper's model ship


class OutputInsideInputError(ValueError):
    """The output folder is the input folder or inside it."""


def output_names(paths: list[Path]) -> dict[Path, str]:
    """``<stem>.png`` per input; inputs sharing a stem (a.jpg, a.png) keep their suffix."""
    stems = Counter(p.stem for p in paths)
    return {
        p: f"{p.stem}.png" if stems[p.stem] == 1 else f"{p.stem}_{p.suffix.lstrip('.')}.png"
        for p in paths
    }


def upscale_folder(
    src: str | Path,
    out: str | Path,
    method: str = DEFAULT_METHOD,
    crop: str = "center",
    weights: str | Path | None = None,
    overwrite: bool = False,
    device: str = "auto",
    batch_size: int = 16,
    progress: bool = True,
) -> dict[str, Any]:
    """Super-resolve every face image in ``src`` into ``out``; returns the manifest."""
    src, out = Path(src), Path(out)
    images, others = scan_folder(src)
    if out.resolve() == src.resolve() or src.resolve() in out.resolve().parents:
        raise OutputInsideInputError(
            f"{out}: the output folder must not be the input folder or inside it"
        )
    device = pick_device(device)
    model, facts = load_method(method, device, weights)
    bicubic = Interpolate(mode="bicubic", size=128)
    names = output_names(images)
    entries: list[dict[str, Any]] = [
        {"input": str(p), "status": "skipped", "reason": why} for p, why in others
    ]
    todo: list[tuple[Path, torch.Tensor]] = []
    for path in images:
        targets = [out / "sr" / names[path], out / "compare" / names[path]]
        if not overwrite and all(t.exists() for t in targets):
            entries.append({"input": str(path), "status": "kept", "reason": "outputs exist"})
            continue
        try:
            todo.append((path, load_face(path, crop)["lr"]))
        except ImageError as err:
            entries.append({"input": str(path), "status": "skipped", "reason": err.reason})
    bar = tqdm(total=len(todo), desc=f"upscale ({method})", unit="img", disable=not progress)
    with torch.inference_mode():
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            lr = torch.stack([t for _, t in chunk]).to(device)
            sr, bic = model(lr).float().clamp(0, 1).cpu(), bicubic(lr.cpu())
            for (path, lr_img), sr_img, bic_img in zip(chunk, sr, bic):
                sr_path = save_atomic(to_pil(sr_img), out / "sr" / names[path])
                panel = grid([[lr_img, bic_img, sr_img]], ["LR 16px", "bicubic", f"SR ({method})"])
                cmp_path = save_atomic(panel, out / "compare" / names[path])
                entries.append(
                    {"input": str(path), "status": "written", "sr": str(sr_path),
                     "compare": str(cmp_path)}
                )  # fmt: skip
            bar.update(len(chunk))
    bar.close()
    manifest = {
        **facts,
        "input_folder": str(src),
        "crop": crop,
        "counts": dict(Counter(e["status"] for e in entries)),
        "files": sorted(entries, key=lambda e: e["input"]),
        "run": run_facts(device),
    }
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(out / "manifest.json")
    return manifest
