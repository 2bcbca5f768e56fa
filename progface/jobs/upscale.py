"""``progface upscale``: face crops and photos in, super-resolved faces and restored photos out.

Inputs are files and folders (``recursive``: subfolders too, and every output path below then
mirrors the input's subfolder: ``OUT/sr/<sub>/<name>.png``). Each image is one of two kinds
(``input_kind``; ``auto`` decides by :func:`input_kind`):

- a **face crop** (an aligned face, today's behaviour): ``OUT/sr/<name>.png`` (128x128) and
  ``OUT/compare/<name>.png`` (LR | bicubic | SR). A 16x16 crop is the network's input as it is;
  a larger one is cropped (``crop``), brought to 128 px and degraded to 16 px by the paper's
  chain: a *simulation* (the manifest says ``"lr": "simulated"``; ``simulate`` adds
  ``OUT/simulate/<name>.png``, HR | LR | bicubic | SR, and the PSNR against the input); a
  smaller one is enlarged to 16 px (bicubic) with a warning;
- a **photo**: :func:`progface.faces.restore_photos` with the same method, the detector
  ``detector`` (a registered face detector) and the background ``bg_method``:
  ``OUT/<name><suffix>.<ext>`` (the photo enlarged by ``scale``, faces restored) and
  ``OUT/faces/<name>_<k>_lr.png`` / ``_sr.png`` per restored face. A photo's mirrored
  subfolder named ``sr``, ``compare``, ``simulate`` or ``faces`` gets ``-photos`` appended.

``OUT/manifest.json`` records per file its ``kind`` and what was done (for photos every face:
box, score, 5 landmarks, width, action, method). Never writes into the input folders, keeps
existing outputs unless ``overwrite``, writes every file atomically, and skips (and reports)
files it cannot read: one bad file does not stop the run. Crops stream through in batches
(decoded ahead, written behind) and photos one at a time (faces of several photos share
batches): memory stays bounded as the folder grows.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from progface.io.atomic import output_folder, write_new, write_text_atomic
from progface.io.inputs import scan_folder
from progface.jobs.runtime import load_method, pick_device, run_facts
from progface.jobs.upscale_crops import upscale_crops
from progface.jobs.upscale_outputs import kept_entry
from progface.jobs.upscale_photos import restore_photo_files


class OutputInsideInputError(ValueError):
    """The output folder is the input folder or inside it."""


def output_names(paths: list[Path], subfolders: dict[Path, str] | None = None) -> dict[Path, str]:
    """A unique ``.png`` name per input (unique by construction, also on case-insensitive disks).

    ``<stem>.png``; inputs sharing a stem (a.jpg, a.png) keep their suffix (``a_jpg.png``); a
    name still taken by another input (``a_png.png`` from a.png and from a_png.png) gets
    ``-2``, ``-3`` ... in the inputs' sorted order. ``subfolders`` (from a ``--recursive``
    scan) puts an input's name under its subfolder (``sub/a.png``), as the inputs were laid out;
    names are unique within each subfolder.
    """
    subfolders = subfolders or {}
    groups: dict[str, list[Path]] = {}
    for path in paths:
        groups.setdefault(subfolders.get(path, "").casefold(), []).append(path)
    names = {}
    for group in groups.values():
        for path, name in _unique_names(group).items():
            sub = subfolders.get(path, "")
            names[path] = f"{sub}/{name}" if sub else name
    return {p: names[p] for p in paths}


def _unique_names(paths: list[Path]) -> dict[Path, str]:
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
    return names


CROP_OUTPUT_FOLDERS = ("sr", "compare", "simulate", "faces")  # OUT/<these>/: crops' and faces'


def photo_output_name(name: str) -> str:
    """A photo's output name: as :func:`output_names` gives it, except that a mirrored
    subfolder named like one of the crops' output folders is renamed, so that a photo never
    lands among crops (``faces/party.png`` -> ``faces-photos/party.png``)."""
    first, sep, rest = name.partition("/")
    if sep and first.casefold() in CROP_OUTPUT_FOLDERS:
        return f"{first}-photos/{rest}"
    return name


CROP_MAX_SIDE = 256  # auto: a crop's longer side is at most this ...
CROP_MAX_ASPECT = 1.25  # ... and its sides differ by at most 5:4 (CelebA's 178x218: 1.22)
INPUT_KINDS = ("auto", "crop", "photo")
BG_METHODS = ("bicubic", "bilinear", "nearest")
PHOTO_EXTS = ("png", "jpg")


def input_kind(width: int, height: int) -> str:
    """``auto``'s rule: ``crop`` when the longer side is at most 256 px and the aspect ratio at
    most 5:4 (square crops of any dataset up to 256 px, CelebA's aligned 178x218, LFW's
    250x250), else ``photo`` (photos are larger, or 4:3 / 3:2 / 16:9)."""
    long, short = max(width, height), max(1, min(width, height))
    return "crop" if long <= CROP_MAX_SIDE and long / short <= CROP_MAX_ASPECT else "photo"


def _header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the header (EXIF rotation does not change the rule), None when
    the file does not open: it is then a crop, whose loading reports why."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.size
    except Exception:
        return None


def collect_inputs(
    paths: list[Path], recursive: bool = False
) -> tuple[list[Path], list[tuple[Path, str]], dict[Path, str]]:
    """Image files of ``paths`` (files and folders; ``recursive``: subfolders too), the other
    entries with why they are skipped, and each image found in a subfolder's path relative to
    the folder given (``"a/b"``; the outputs mirror it). A missing path or a folder without
    images is a ``FolderError``; a file named directly is used whatever its suffix (a non-image
    is reported when it is read)."""
    from progface.data.errors import FolderError
    from progface.io.inputs import _not_used

    images: list[Path] = []
    others: list[tuple[Path, str]] = []
    subfolders: dict[Path, str] = {}
    for path in paths:
        if path.is_file():
            images.append(path)
            continue
        if not path.exists():
            raise FolderError(path, "no such file or folder")
        if not recursive:
            found, skipped = scan_folder(path)
            images += found
            others += skipped
            continue
        found = []
        for folder in sorted([path, *(p for p in path.rglob("*") if p.is_dir())]):
            if any(part.startswith(".") for part in folder.relative_to(path).parts):
                continue
            for entry in sorted(folder.iterdir()):
                why = None if entry.is_dir() else _not_used(entry)
                if why:
                    others.append((entry, why))
                elif entry.is_file() and not entry.name.startswith("."):
                    found.append(entry)
                    if folder != path:
                        subfolders.setdefault(entry, folder.relative_to(path).as_posix())
        if not found:
            raise FolderError(path, "no images in folder or its subfolders")
        images += found
    unique = list(dict.fromkeys(images))  # a file named twice (a folder and its file) once
    return unique, others, subfolders


def _check_output(out: Path, paths: list[Path]) -> None:
    for path in paths:
        folder = path.parent if path.is_file() else path
        inside = folder.resolve() in out.resolve().parents and not path.is_file()
        if out.resolve() == folder.resolve() or inside:
            raise OutputInsideInputError(
                f"{out}: the output folder must not be the input folder or inside it"
            )


def upscale_folder(
    src: str | Path | list[str | Path],
    out: str | Path,
    method: str | None = None,
    crop: str = "center",
    weights: str | Path | None = None,
    overwrite: bool = False,
    device: str = "auto",
    batch_size: int = 16,
    progress: bool = True,
    precision: str = "auto",
    *,
    recursive: bool = False,
    kind: str = "auto",
    simulate: bool = False,
    ext: str = "png",
    suffix: str = "",
    scale: int = 8,
    detector: str | None = None,
    bg_method: str = "bicubic",
    min_face: float = 4.0,
    max_face: float = 10.0,
    restore_large: bool = False,
    only_center_face: bool = False,
    draw_boxes: bool = False,
    runtime: str = "torch",
) -> dict[str, Any]:
    """Super-resolve the face crops and restore the photos of ``src`` (files and folders) into
    ``out``; returns the manifest (see the module docstring).

    ``kind``: ``auto`` (:func:`input_kind`), ``crop`` or ``photo``. ``precision`` (``auto``,
    ``fp32``, ``bf16``, ``fp16``): the network runs folded for inference at that precision;
    ``auto`` is bf16 where the device computes it natively
    (``progface.jobs.runtime.pick_precision``); ``runtime="onnxruntime"`` runs the network's
    ONNX export instead. The manifest records what ran."""
    if kind not in INPUT_KINDS:
        raise ValueError(f"input kind must be one of {', '.join(INPUT_KINDS)}, got {kind!r}")
    if bg_method not in BG_METHODS:
        raise ValueError(f"--bg-method must be one of {', '.join(BG_METHODS)}, got {bg_method!r}")
    if ext not in PHOTO_EXTS:
        raise ValueError(f"--ext must be one of {', '.join(PHOTO_EXTS)}, got {ext!r}")
    sources = [Path(p) for p in (src if isinstance(src, list | tuple) else [src])]
    out = Path(out)
    images, others, subfolders = collect_inputs(sources, recursive)
    _check_output(out, sources)
    output_folder(out, "-o/--out")  # a file or a read-only folder fails before any work
    device = pick_device(device)
    from progface import plugins

    if method is None:
        defaults = plugins.defaults("methods", "upscale")
        if not defaults:
            raise ValueError("no method is registered as upscale's default: name one with --method")
        method = defaults[0]
    if detector is None:
        found = plugins.defaults("face_detectors", "upscale")
        detector = found[0] if found else None
    detector_spec = plugins.get("face_detectors", detector) if detector else None
    model, facts = load_method(method, device, weights, precision, runtime)
    names = output_names(images, subfolders)
    entries: list[dict[str, Any]] = [
        {"input": str(p), "status": "skipped", "reason": why} for p, why in others
    ]
    crops: list[Path] = []
    photos: list[Path] = []
    for path in images:
        if kind == "auto":
            size = _header_size(path)
            is_crop = size is None or input_kind(*size) == "crop"
        else:
            is_crop = kind == "crop"
        if not is_crop:
            names[path] = photo_output_name(names[path])
        stem = names[path][: -len(".png")]
        if is_crop:
            targets = [out / "sr" / names[path], out / "compare" / names[path]]
        else:
            targets = [out / f"{stem}{suffix}.{ext}"]
        existing = [str(t) for t in targets if t.exists()]
        if not overwrite and existing:
            entries.append(kept_entry(path, existing) | {"kind": "crop" if is_crop else "photo"})
            continue
        (crops if is_crop else photos).append(path)
    bar = tqdm(total=len(crops) + len(photos), desc=f"upscale ({method})", unit="img",
               disable=not progress)  # fmt: skip
    entries += upscale_crops(crops, model, method, crop, out, names, overwrite, simulate,
                              batch_size, device, bar)  # fmt: skip
    photo_facts: dict[str, Any] = {}
    if photos:
        photo_facts = {
            "detector": detector,
            "scale": scale,
            "bg_method": bg_method,
            "min_face": min_face,
            "max_face": max_face,
            "restore_large": restore_large,
            "only_center_face": only_center_face,
            "suffix": suffix,
            "ext": ext,
        }
        options = dict(photo_facts, names=names, out=out, overwrite=overwrite, method=method,
                       draw_boxes=draw_boxes, batch_size=batch_size, device=device)  # fmt: skip
        entries += restore_photo_files(photos, model, detector_spec, options, bar)
    bar.close()
    counts = Counter(e["status"] for e in entries)
    manifest = {
        **facts,
        "input_folder": str(sources[0]),
        "inputs": [str(p) for p in sources],
        "input_kind": kind,
        "crop": crop,
        **({"photos": photo_facts} if photo_facts else {}),
        "counts": dict(counts),
        "kinds": dict(Counter(e["kind"] for e in entries if "kind" in e)),
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
