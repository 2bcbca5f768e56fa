"""``progface upscale``: face crops and photos in, super-resolved faces and restored photos out.

Inputs are files and folders (``recursive``: subfolders too). Each image is one of two kinds
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
  ``OUT/faces/<name>_<k>_lr.png`` / ``_sr.png`` per restored face.

``OUT/manifest.json`` records per file its ``kind`` and what was done (for photos every face:
box, score, 5 landmarks, width, action, method). Never writes into the input folders, keeps
existing outputs unless ``overwrite``, writes every file atomically, and skips (and reports)
files it cannot read: one bad file does not stop the run. Crops stream through in batches
(decoded ahead, written behind) and photos one at a time (faces of several photos share
batches): memory stays bounded as the folder grows.
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


CROP_MAX_SIDE = 256  # auto: a crop's longer side is at most this ...
CROP_MAX_ASPECT = 1.25  # ... and its sides differ by at most 5:4 (CelebA's 178x218: 1.22)
INPUT_KINDS = ("auto", "crop", "photo")
BG_METHODS = ("bicubic", "bilinear", "nearest")
PHOTO_EXTS = ("png", "jpg")
FACES_HINT = "pip install 'progface[{extra}]'"


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
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Image files of ``paths`` (files and folders; ``recursive``: subfolders too) and the
    other entries with why they are skipped. A missing path or a folder without images is a
    ``FolderError``; a file named directly is used whatever its suffix (a non-image is
    reported when it is read)."""
    from progface.data.errors import FolderError
    from progface.io.inputs import _not_used

    images: list[Path] = []
    others: list[tuple[Path, str]] = []
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
        if not found:
            raise FolderError(path, "no images in folder or its subfolders")
        images += found
    unique = list(dict.fromkeys(images))  # a file named twice (a folder and its file) once
    return unique, others


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
    images, others = collect_inputs(sources, recursive)
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
    names = output_names(images)
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
        stem = names[path][: -len(".png")]
        if is_crop:
            targets = [out / "sr" / names[path], out / "compare" / names[path]]
        else:
            targets = [out / f"{stem}{suffix}.{ext}"]
        existing = [str(t) for t in targets if t.exists()]
        if not overwrite and existing:
            entries.append(_kept(path, existing) | {"kind": "crop" if is_crop else "photo"})
            continue
        (crops if is_crop else photos).append(path)
    bar = tqdm(total=len(crops) + len(photos), desc=f"upscale ({method})", unit="img",
               disable=not progress)  # fmt: skip
    entries += _upscale_crops(crops, model, method, crop, out, names, overwrite, simulate,
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
        entries += _restore_photos(photos, model, detector_spec, options, bar)
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


def _upscale_crops(todo, model, method, crop, out, names, overwrite, simulate, batch_size,
                   device, bar) -> list[dict[str, Any]]:  # fmt: skip
    """The crops: decoding runs one batch ahead and writing one batch behind the network, in
    threads: memory holds a few batches whatever the folder's size."""
    if not todo:
        return []
    bicubic = Interpolate(mode="bicubic", size=128)
    entries: list[dict[str, Any]] = []
    written: deque[Future] = deque()
    with torch.inference_mode(), ThreadPoolExecutor(1, "progface-write") as writer:
        for chunk, skipped in prefetch(_lr_batches(todo, crop, batch_size)):
            entries += skipped
            if chunk:
                lr = torch.stack([item["lr"] for _, item in chunk]).to(device)
                sr, bic = model(lr).float().clamp(0, 1).cpu(), bicubic(lr.cpu())
                written.append(writer.submit(
                    _write_batch, chunk, sr, bic, method, out, names, overwrite, simulate
                ))  # fmt: skip
            while len(written) > 1:
                entries += written.popleft().result()
            bar.update(len(chunk) + len(skipped))
        for job in written:
            entries += job.result()
    return entries


def _lr_batches(paths: list[Path], crop: str, batch_size: int):
    """Per ``batch_size`` inputs: ``([(path, {"lr", "hr", "mode", "size", "warning"})],
    [skip entries])``."""
    for start in range(0, len(paths), batch_size):
        chunk, skipped = [], []
        for path in paths[start : start + batch_size]:
            try:
                chunk.append((path, load_crop(path, crop)))
            except ImageError as err:
                skipped.append(
                    {"input": str(path), "kind": "crop", "status": "skipped", "reason": err.reason}
                )
        yield chunk, skipped


def load_crop(path: Path, crop: str) -> dict[str, Any]:
    """One face crop: ``lr`` [3,16,16], ``hr`` [3,128,128] or None, ``mode`` (``input``: a 16x16
    file is the LR; ``simulated``: cropped, brought to 128 px, degraded by the paper's chain;
    ``enlarged``: smaller than 16 px, enlarged to 16 with a ``warning``) and ``size``."""
    import torch.nn.functional as F

    from progface.data.crop import apply_crop
    from progface.data.degrade import quantize_uint8
    from progface.io.images import load_image
    from progface.io.inputs import LR_SIZE

    img = load_image(path)
    h, w = img.shape[-2:]
    if min(h, w) >= LR_SIZE:
        face = load_face(path, crop)
        mode = "input" if face["hr"] is None else "simulated"
        return {"lr": face["lr"], "hr": face["hr"], "mode": mode, "size": [w, h]}
    if h != w:  # a square face first (policy "none" would refuse a non-square image)
        img = apply_crop(img, "center", path=path)
    lr = F.interpolate(img[None], size=(LR_SIZE, LR_SIZE), mode="bicubic", align_corners=False)
    warning = (
        f"smaller than the network's 16x16 input ({w}x{h}): enlarged to 16x16 (bicubic); "
        "the result is only as good as that"
    )
    return {"lr": quantize_uint8(lr.clamp(0, 1))[0], "hr": None, "mode": "enlarged",
            "size": [w, h], "warning": warning}  # fmt: skip


def _write_batch(chunk, sr, bic, method: str, out: Path, names: dict, overwrite: bool,
                 simulate: bool = False) -> list:  # fmt: skip
    """The sr/ and compare/ (and simulate/) images of one batch; their manifest entries."""
    from progface.metrics.quality import psnr

    entries = []
    for (path, item), sr_img, bic_img in zip(chunk, sr, bic):
        lr_img = item["lr"]
        panel = grid([[lr_img, bic_img, sr_img]], ["LR 16px", "bicubic", f"SR ({method})"])
        files = {"sr": to_pil(sr_img), "compare": panel}
        facts: dict[str, Any] = {"kind": "crop", "size": item["size"], "lr": item["mode"]}
        if item.get("warning"):
            facts["warning"] = item["warning"]
        if item["hr"] is not None:
            hr = item["hr"]
            pair = torch.stack([sr_img, bic_img.clamp(0, 1)])
            sr_db, bic_db = (float(v) for v in psnr(pair, hr[None].expand(2, -1, -1, -1)))
            facts["psnr"] = {"sr": round(sr_db, 3), "bicubic": round(bic_db, 3)}
            if simulate:
                files["simulate"] = grid(
                    [[hr, lr_img, bic_img, sr_img]],
                    ["HR (input)", "LR 16px", f"bicubic {bic_db:.2f} dB", f"SR {sr_db:.2f} dB"],
                )
        elif simulate:
            facts["simulate"] = "no panel: the input is not larger than 16 px (no HR to compare)"
        entry = _save_outputs(path, files, out, names[path], overwrite)
        entries.append(facts | entry if entry["status"] == "written" else entry | {"kind": "crop"})
    return entries


def _restore_photos(paths, model, spec, options, bar) -> list[dict[str, Any]]:
    """The photos through :func:`progface.faces.restore_photos`, written one at a time."""
    import warnings

    fail = None
    detector = None
    if spec is None:
        fail = "no face detector is registered as upscale's default: name one with --detector"
    else:
        try:
            detector = spec.build()
        except ImportError as err:
            hint = FACES_HINT.format(extra=spec.extra) if spec.extra else ""
            first = " ".join(str(err).split())
            fail = first if not hint or hint in first else f"{first} ({hint})"
            fail = f"face detector {spec.name!r} unavailable: {fail}"
    if detector is None:
        bar.update(len(paths))
        return [{"input": str(p), "kind": "photo", "status": "skipped", "reason": fail}
                for p in paths]  # fmt: skip
    from progface.faces import restore_photos

    entries = []
    results = restore_photos(
        (str(p) for p in paths),
        model,
        scale=options["scale"],
        detector=detector,
        min_face=options["min_face"],
        max_face=options["max_face"],
        restore_large=options["restore_large"],
        only_center_face=options["only_center_face"],
        batch_size=options["batch_size"],
        background=options["bg_method"],
        max_pending=8,  # photos held while their faces wait: bounded memory
        device=options["device"],
    )
    by_source = {str(p): p for p in paths}
    while True:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = next(results)
            except StopIteration:
                break
        path = by_source[res.source]
        entry = _photo_entry(path, res, options)
        notes = [" ".join(str(w.message).split()) for w in caught]
        notes = [n.removeprefix(f"{res.source}: ") for n in notes if n not in res.notes]
        if notes:
            entry.setdefault("notes", []).extend(n for n in notes if n not in entry["notes"])
        entries.append(entry)
        bar.update(1)
    return entries


def _photo_entry(path: Path, res, options: dict) -> dict[str, Any]:
    from PIL import Image

    base: dict[str, Any] = {"input": str(path), "kind": "photo"}
    if res.error is not None:
        return base | {"status": "skipped", "reason": res.error}
    out, overwrite = options["out"], options["overwrite"]
    stem = options["names"][path][: -len(".png")]
    faces = []
    for k, rec in enumerate(res.faces):
        face = {
            "box": [round(float(v), 2) for v in rec.box],
            "score": round(float(rec.score), 4),
            "landmarks5": [[round(float(x), 2), round(float(y), 2)] for x, y in rec.landmarks5],
            "scheme": rec.scheme,
            "width": round(rec.width, 2),
            "action": rec.action,
            "method": options["method"] if rec.action == "restored" else options["bg_method"],
        }
        if rec.pasted is not None:
            face["pasted"] = list(rec.pasted)
        if rec.lr is not None and rec.sr is not None:
            for part, img in (("lr", rec.lr), ("sr", rec.sr)):
                target = out / "faces" / f"{stem}_{k}_{part}.png"
                try:
                    face[part] = str(save_atomic(to_pil(img), target, overwrite=overwrite))
                except FileExistsError:
                    face[part] = f"kept: {target} exists (pass --overwrite to replace it)"
        faces.append(face)
    image = Image.fromarray(res.image)
    res.image = None  # the enlarged photo is the largest thing held: free it once written
    if options["draw_boxes"]:
        _draw_boxes(image, res.faces, res.scale)
    target = out / f"{stem}{options['suffix']}.{options['ext']}"
    fmt, kw = ("PNG", {}) if options["ext"] == "png" else ("JPEG", {"quality": 95})
    from progface.io.atomic import write_atomic

    entry = base | {
        "size": list(res.size),
        "scale": res.scale,
        "output_size": list(image.size),
        "faces": faces,
        "restored": sum(f["action"] == "restored" for f in faces),
    }
    if res.notes:
        entry["notes"] = list(res.notes)
    if not faces:
        entry.setdefault("notes", []).append(
            f"no face found: the photo is only enlarged ({options['bg_method']})"
        )
    try:
        write_atomic(target, lambda tmp: image.save(tmp, format=fmt, **kw), overwrite=overwrite)
    except FileExistsError:
        return _kept(path, [str(target)]) | entry
    return entry | {"status": "written", "output": str(target)}


def _draw_boxes(image, faces, scale: int) -> None:
    """Each face's box on the restored photo: green restored, orange left to the background."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    for rec in faces:
        x0, y0, x1, y1 = (v * scale for v in rec.box)
        colour = (0, 220, 0) if rec.action == "restored" else (255, 150, 0)
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=max(1, scale // 4))


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
