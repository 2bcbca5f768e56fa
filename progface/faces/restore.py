"""The photo pipeline as a library function: :func:`restore_photos`.

For each photo: detect faces (5 landmarks) -> similarity to the template -> aligned 128-px
crop -> the paper's chain to 16 px -> ``method`` (faces of many photos share batches) -> the
photo enlarged by ``scale`` with ``background`` -> each SR face warped back with a feathered
mask and colour matching. Photos stream through: at most ``batch_size`` faces wait for the
network, at most ``max_pending`` photos are held, and one enlarged photo is built at a time.

Output size: an enlarged photo over ``max_output_pixels`` (default 100 Mpx, 300 MB as uint8)
is made with the largest integer scale that fits instead (never below 1), with a warning
(``warnings.warn``) and the reason in ``PhotoResult.notes``; a 6000x4000 photo at x8 would be
1.5 Gpx, so it gets x2 (96 Mpx).

Face sizes (``width``: the face's jaw-to-jaw width in photo px, from the alignment's scale):
faces narrower than ``min_face`` (default 4) are skipped; faces wider than ``max_face`` are
left to the background method unless ``restore_large``. The network sees a face 8 px wide (its
16-px input is the aligned frame, twice the face's width), so a wider face loses detail on the
way in. Measured (``benchmarks/photo_faces.py --gain ours``, Helen faces, x8, PSNR against the
original photo): the restored face beats the bicubic background for 100% of 6-px faces, 96% of
8-px, 59% of 10-px, 21% of 12-px and none of 16 px or more; hence ``max_face = 10``. A method
judged by eye (a GAN) may earn a larger ``max_face``.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from progface.faces.align import (
    ALIGNED_SIZE,
    TEMPLATES,
    face_width,
    lr_crops,
    similarity_transform,
)
from progface.faces.detect import Face, FaceDetector, as_uint8_rgb, build_detector
from progface.faces.paste import enlarge, face_mask, paste_face

__all__ = ["FaceRecord", "PhotoResult", "restore_photos"]

RESTORED, SMALL, LARGE, NOT_CENTER = "restored", "too-small", "too-large", "not-center"


@dataclass
class FaceRecord:
    """One detected face and what was done with it.

    ``action``: ``restored``, or why not: ``too-small`` (width < min_face), ``too-large``
    (width > max_face: left to the background), ``not-center`` (only_center_face).
    ``matrix``: photo -> 128-px aligned frame [2, 3]; ``width``: face width in photo px;
    ``lr`` [3, 16, 16] and ``sr`` [3, 128, 128] in [0, 1] (None unless restored and
    ``keep_crops``); ``pasted``: the box (x0, y0, x1, y1) of the output image it changed.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks5: np.ndarray = field(repr=False)
    scheme: str
    width: float
    matrix: np.ndarray = field(repr=False)
    action: str = RESTORED
    lr: Tensor | None = field(default=None, repr=False)
    sr: Tensor | None = field(default=None, repr=False)
    pasted: tuple[int, int, int, int] | None = None


@dataclass
class PhotoResult:
    """One photo: ``image`` the restored photo, uint8 [H * scale, W * scale, 3] (None when the
    photo could not be read: ``error`` says why); ``scale`` what was used (``notes`` say why
    when it is below the one asked for); ``faces`` every detected face."""

    source: str
    image: np.ndarray | None
    scale: int
    faces: list[FaceRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    size: tuple[int, int] | None = None  # input width, height


@dataclass
class _Job:
    result: PhotoResult
    photo: np.ndarray | None
    waiting: int = 0


def output_scale(width: int, height: int, scale: int, max_output_pixels: float) -> int:
    """The largest integer scale <= ``scale`` whose output fits ``max_output_pixels`` (>= 1)."""
    fits = int((max_output_pixels / (width * height)) ** 0.5)
    return max(1, min(int(scale), fits))


def _load(item, index: int) -> tuple[str, np.ndarray]:
    if isinstance(item, str | Path):
        from progface.io.images import load_image_uint8

        return str(item), load_image_uint8(item)
    return f"<image {index}>", as_uint8_rgb(item)


def _records(faces: list[Face], options: dict, size: tuple[int, int]) -> list[FaceRecord]:
    out = []
    for f in faces:
        m = similarity_transform(f.landmarks5, TEMPLATES[f.scheme])
        width = float(face_width(m))
        rec = FaceRecord(f.box, f.score, np.asarray(f.landmarks5), f.scheme, width, m.numpy())
        if width < options["min_face"]:
            rec.action = SMALL
        elif width > options["max_face"] and not options["restore_large"]:
            rec.action = LARGE
        out.append(rec)
    if options["only_center_face"] and out:
        cx, cy = size[0] / 2, size[1] / 2
        keep = min(
            out,
            key=lambda r: (
                ((r.box[0] + r.box[2]) / 2 - cx) ** 2 + ((r.box[1] + r.box[3]) / 2 - cy) ** 2
            ),
        )
        for r in out:
            if r is not keep and r.action == RESTORED:
                r.action = NOT_CENTER
    return out


def restore_photos(
    photos: Iterable[str | Path | np.ndarray | Tensor],
    method: Callable[[Tensor], Tensor],
    *,
    scale: int = 8,
    detector: FaceDetector | str | None = None,
    detector_options: dict | None = None,
    min_face: float = 4.0,
    max_face: float = 10.0,
    restore_large: bool = False,
    only_center_face: bool = False,
    batch_size: int = 16,
    background: str | Callable[[Tensor, int], Tensor] = "bicubic",
    mask: str = "ellipse",
    color: str | None = "lowfreq",
    color_sigma: float = 8.0,
    max_output_pixels: float = 100e6,
    max_pending: int | None = None,
    keep_crops: bool = True,
    device: str | torch.device | None = None,
) -> Iterator[PhotoResult]:
    """Restore the faces of ``photos``; yields one :class:`PhotoResult` per photo, in order.

    ``photos``: paths (read with EXIF orientation; an unreadable file gives a result with
    ``error``), uint8 HxWx3 arrays, or [3, H, W] tensors. ``method``: LR [B, 3, 16, 16] in
    [0, 1] -> SR [B, 3, 128, 128] (e.g. ``progface.jobs.runtime.load_method(...)[0]``).
    ``detector``: a :class:`~progface.faces.detect.FaceDetector`, or a name of
    ``progface.faces.detect.DETECTORS`` built with ``detector_options`` (None: the default,
    ``opencv-haar``). ``background``: the enlargement of the whole photo (a name of
    ``progface.faces.paste.BACKGROUNDS`` or a callable (x [1, 3, h, w], scale) -> [1, 3, h*s,
    w*s]). ``mask`` (``ellipse``/``rect``), ``color`` and ``color_sigma``: see
    :mod:`progface.faces.paste`. ``device``: where LR batches go (default: that of ``method``'s
    parameters, else the CPU). ``max_pending``: photos held before a partial batch is run
    (default 4 * batch_size).
    """
    if scale < 1 or int(scale) != scale:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not isinstance(detector, FaceDetector):
        detector = build_detector(detector, **(detector_options or {}))
    if device is None:
        params = list(method.parameters()) if isinstance(method, nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    options = {
        "min_face": min_face,
        "max_face": max_face,
        "restore_large": restore_large,
        "only_center_face": only_center_face,
    }
    paste_mask = face_mask(ALIGNED_SIZE, mask)
    max_pending = max_pending or 4 * batch_size
    pending: deque[_Job] = deque()
    queue: list[tuple[_Job, FaceRecord, Tensor]] = []

    def run(n: int) -> None:
        chunk, queue[:n] = queue[:n], []
        with torch.inference_mode():
            lr = torch.stack([t for _, _, t in chunk]).to(device)
            sr = method(lr).float().clamp(0, 1).cpu()
        if sr.shape[1:] != (3, ALIGNED_SIZE, ALIGNED_SIZE):
            raise ValueError(
                f"the method returned {tuple(sr.shape)} for LR {tuple(lr.shape)}; "
                f"restore_photos needs [B, 3, {ALIGNED_SIZE}, {ALIGNED_SIZE}]"
            )
        for (job, rec, lr_face), out in zip(chunk, sr):
            rec.lr, rec.sr = lr_face, out
            job.waiting -= 1

    def finish(job: _Job) -> PhotoResult:
        res = job.result
        if job.photo is not None:
            res.image = enlarge(job.photo, res.scale, background)
            for rec in res.faces:
                if rec.action == RESTORED:
                    m = torch.from_numpy(rec.matrix)
                    rec.pasted = paste_face(
                        res.image, rec.sr, m, res.scale, paste_mask, color, color_sigma
                    )
                    if not keep_crops:
                        rec.lr = rec.sr = None
        job.photo = None
        return res

    def ready() -> Iterator[PhotoResult]:
        while pending and pending[0].waiting == 0:
            yield finish(pending.popleft())

    for index, item in enumerate(photos):
        job = _prepare(item, index, detector, options, scale, max_output_pixels)
        pending.append(job)
        if job.photo is not None:
            todo = [r for r in job.result.faces if r.action == RESTORED]
            if todo:
                mats = torch.from_numpy(np.stack([r.matrix for r in todo]))
                lrs = lr_crops(job.photo, mats)
                queue += [(job, r, t) for r, t in zip(todo, lrs)]
                job.waiting = len(todo)
        while len(queue) >= batch_size:
            run(batch_size)
        if len(pending) > max_pending and queue:
            run(len(queue))
        yield from ready()
    while queue:
        run(min(batch_size, len(queue)))
    yield from ready()


def _prepare(item, index, detector, options, scale, max_output_pixels) -> _Job:
    from progface.data.errors import ImageError

    try:
        source, photo = _load(item, index)
    except ImageError as err:
        return _Job(PhotoResult(str(item), None, 0, error=err.reason), None)
    h, w = photo.shape[:2]
    used = output_scale(w, h, scale, max_output_pixels)
    result = PhotoResult(source, None, used, size=(w, h))
    if used < scale:
        note = (
            f"scale reduced from x{scale} to x{used}: {w}x{h} x{scale} would be "
            f"{w * h * scale * scale / 1e6:.0f} Mpx (max_output_pixels "
            f"{max_output_pixels / 1e6:.0f} Mpx)"
        )
        warnings.warn(f"{source}: {note}", stacklevel=3)
        result.notes.append(note)
    try:
        found = detector.detect(photo)
    except Exception as err:  # noqa: BLE001 (any detector, a plugin's too): one photo is lost
        why = " ".join(str(err).split())[:200] or type(err).__name__
        name = getattr(detector, "name", type(detector).__name__)
        return _Job(
            PhotoResult(source, None, 0, error=f"face detector {name!r} failed: {why}"), None
        )
    result.faces = _records(found, options, (w, h))
    return _Job(result, photo)
