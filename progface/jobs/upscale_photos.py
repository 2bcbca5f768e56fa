"""``progface upscale`` on photos: :func:`progface.faces.restore_photos`, then per photo
``OUT/<name><suffix>.<ext>``, ``OUT/faces/<name>_<k>_lr.png`` / ``_sr.png`` and its manifest
entry (see :mod:`progface.jobs.upscale` for the whole job)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from progface.io.figures import save_atomic, to_pil
from progface.jobs.upscale_outputs import kept_entry

FACES_HINT = "pip install 'progface[{extra}]'"


def restore_photo_files(paths, model, spec, options, bar) -> list[dict[str, Any]]:
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
        return kept_entry(path, [str(target)]) | entry
    return entry | {"status": "written", "output": str(target)}


def _draw_boxes(image, faces, scale: int) -> None:
    """Each face's box on the restored photo: green restored, orange left to the background."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    for rec in faces:
        x0, y0, x1, y1 = (v * scale for v in rec.box)
        colour = (0, 220, 0) if rec.action == "restored" else (255, 150, 0)
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=max(1, scale // 4))
