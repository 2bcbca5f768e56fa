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
from progface.io.figures import grid, psnr_uint8, to_uint8
from progface.io.prefetch import one_torch_thread, prefetch
from progface.jobs.upscale_outputs import save_outputs
from progface.models.interpolate import Interpolate


def upscale_crops(todo, model, method, crop, out, names, overwrite, simulate, batch_size,
                   device, bar) -> list[dict[str, Any]]:  # fmt: skip
    """The crops, ``batch_size`` at a time: memory holds a few batches whatever the folder's
    size. On a GPU, decoding runs one batch ahead and writing one batch behind the network, in
    threads. On a CPU the network already keeps every core busy, and I/O threads beside it
    stall its threads at every layer (69-71 % of the network's pace end to end, against 73-89 %
    in turn): each batch is decoded, run and written in turn, the decoding and writing spread
    over as many threads as torch computes with."""
    bicubic = Interpolate(mode="bicubic", size=128)
    outputs = (method, out, names, overwrite, simulate)
    batches = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]
    entries: list[dict[str, Any]] = []
    with torch.inference_mode():
        if device == "cpu":
            steps = _in_turn(batches, crop, model, bicubic, outputs)
        else:
            steps = _overlapped(batches, crop, model, bicubic, device, outputs)
        for done, new in steps:
            entries += new
            bar.update(done)
    return entries


def _in_turn(batches, crop, model, bicubic, outputs):
    """Decode (threads), run, write (threads) each batch in turn; yields per batch the number
    of inputs done and their manifest entries."""
    workers = max(1, torch.get_num_threads())
    with ThreadPoolExecutor(workers, "progface-io", initializer=one_torch_thread) as pool:
        for paths in batches:
            chunk, entries = _split_loaded(pool.map(_load_one, paths, [crop] * len(paths)))
            if chunk:
                sr, bic = _run(chunk, model, bicubic, "cpu")
                k = -(-len(chunk) // workers)  # one slice of the batch per thread
                cuts = [slice(i, i + k) for i in range(0, len(chunk), k)]
                jobs = [pool.submit(_write_batch, chunk[c], sr[c], bic[c], *outputs) for c in cuts]
                for job in jobs:
                    entries += job.result()
            yield len(paths), entries


def _overlapped(batches, crop, model, bicubic, device, outputs):
    """Decode one batch ahead and write one behind the network (which runs on ``device``);
    yields per batch the number of inputs done and the manifest entries ready so far."""
    loading = (_split_loaded(_load_one(p, crop) for p in paths) for paths in batches)
    written: deque[Future] = deque()
    with ThreadPoolExecutor(1, "progface-write", initializer=one_torch_thread) as writer:
        for chunk, entries in prefetch(loading):
            done = len(chunk) + len(entries)  # the batch's inputs: read, and skipped
            if chunk:
                sr, bic = _run(chunk, model, bicubic, device)
                written.append(writer.submit(_write_batch, chunk, sr, bic, *outputs))
            while len(written) > 1:
                entries += written.popleft().result()
            yield done, entries
        yield 0, [e for job in written for e in job.result()]


def _run(chunk, model, bicubic, device) -> tuple[torch.Tensor, torch.Tensor]:
    """SR (clamped) and bicubic ``[B, 3, 128, 128]`` on the CPU for one batch of crops."""
    lr = torch.stack([item["lr"] for _, item in chunk])
    return model(lr.to(device)).float().clamp(0, 1).cpu(), bicubic(lr)


def _load_one(path: Path, crop: str) -> tuple[Path, dict[str, Any]] | dict[str, str]:
    """``(path, load_crop(path))``, or the manifest entry of an unreadable file."""
    try:
        return path, load_crop(path, crop)
    except ImageError as err:
        return {"input": str(path), "kind": "crop", "status": "skipped", "reason": err.reason}


def _split_loaded(loaded) -> tuple[list, list]:
    """``_load_one`` results -> (``[(path, item)]``, skip entries), order kept."""
    chunk, skipped = [], []
    for x in loaded:
        (skipped if isinstance(x, dict) else chunk).append(x)
    return chunk, skipped


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
        files = {"sr": sr_u8[i], "compare": panel}
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
