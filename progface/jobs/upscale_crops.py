"""``progface upscale`` on face crops: decoded a batch ahead, written a batch behind the network.

Per crop: ``OUT/sr/<name>.png``, ``OUT/compare/<name>.png`` (LR | bicubic | SR) and, with
``simulate``, ``OUT/simulate/<name>.png`` (HR | LR | bicubic | SR with PSNRs); see
:mod:`progface.jobs.upscale` for the whole job.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from progface.data.errors import ImageError
from progface.io.figures import grid, psnr_uint8, to_pil, to_uint8
from progface.io.prefetch import prefetch
from progface.jobs.upscale_outputs import save_outputs
from progface.models.interpolate import Interpolate


def upscale_crops(todo, model, method, crop, out, names, overwrite, simulate, batch_size,
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
    from progface.io.inputs import LR_SIZE, face_of_image

    img = load_image(path)
    h, w = img.shape[-2:]
    if min(h, w) >= LR_SIZE:
        face = face_of_image(img, path, crop)
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
    """The sr/ and compare/ (and simulate/) images of one batch; their manifest entries. Pixels
    are converted and PSNRs computed once per batch (per image, they cost more than the PNGs)."""
    lr = torch.stack([item["lr"] for _, item in chunk])
    sr_u8, bic_u8, lr_u8 = to_uint8(sr), to_uint8(bic), to_uint8(lr)
    with_hr = [i for i, (_, item) in enumerate(chunk) if item["hr"] is not None]
    scores: dict[int, tuple[float, float]] = {}
    if with_hr:  # the PSNR of the 8-bit images written against the (8-bit) input crop
        hr_u8 = to_uint8(torch.stack([chunk[i][1]["hr"] for i in with_hr]))
        sr_db, bic_db = psnr_uint8(sr_u8[with_hr], hr_u8), psnr_uint8(bic_u8[with_hr], hr_u8)
        scores = {i: (float(s), float(b)) for i, s, b in zip(with_hr, sr_db, bic_db)}
    labels = ["LR 16px", "bicubic", f"SR ({method})"]
    entries = []
    for i, (path, item) in enumerate(chunk):
        panel = grid([[lr_u8[i], bic_u8[i], sr_u8[i]]], labels)
        files = {"sr": to_pil(sr_u8[i]), "compare": panel}
        facts: dict[str, Any] = {"kind": "crop", "size": item["size"], "lr": item["mode"]}
        if item.get("warning"):
            facts["warning"] = item["warning"]
        if i in scores:
            sr_db, bic_db = scores[i]
            facts["psnr"] = {"sr": round(sr_db, 3), "bicubic": round(bic_db, 3)}
            if simulate:
                files["simulate"] = grid(
                    [[item["hr"], lr_u8[i], bic_u8[i], sr_u8[i]]],
                    ["HR (input)", "LR 16px", f"bicubic {bic_db:.2f} dB", f"SR {sr_db:.2f} dB"],
                )
        elif simulate:
            facts["simulate"] = "no panel: the input is not larger than 16 px (no HR to compare)"
        entry = save_outputs(path, files, out, names[path], overwrite)
        entries.append(facts | entry if entry["status"] == "written" else entry | {"kind": "crop"})
    return entries
