"""In-the-wild photos: face detection, 5-point alignment, paste-back (DESIGN.md, "Photos").

    from progface.faces import restore_photos
    for result in restore_photos(paths, method, scale=8):
        ...  # result.image (uint8 HxWx3, enlarged), result.faces (FaceRecord per face)

Modules: :mod:`~progface.faces.detect` (detectors), :mod:`~progface.faces.align` (templates,
similarity transforms, aligned crops and their 16-px LR), :mod:`~progface.faces.paste`
(enlarged background, feathered masks, colour matching, inverse warp),
:mod:`~progface.faces.restore` (the streaming pipeline). Importing this package loads no model
and does not import dlib or OpenCV; detectors import them when built, and a missing one raises
an ``ImportError`` naming the extra: ``pip install 'progface[faces]'``.

Detector protocol (what a ``face_detectors`` plugin provides)::

    class FaceDetector(Protocol):
        name: str
        def detect(self, image) -> list[Face]: ...
        # image: uint8 HxWx3 RGB array or [3, H, W] tensor (uint8, or float in [0, 1])

    Face(box=(x0, y0, x1, y1), score=float, landmarks5=ndarray[5, 2], scheme="standard")

``landmarks5`` are photo pixels (0-based, pixel centres at integers) in the order of
``scheme``, a key of ``progface.faces.align.TEMPLATES`` (``standard``: eye centres, nose tip,
mouth corners, image-left first; ``dlib5``: dlib's 5-point order). A detector with a new point
scheme adds its template there. Factories: ``DETECTORS[name](**options) -> FaceDetector``.

Plugin kind ``face_detectors``: a plugin's ``register_face_detectors`` hook registers
:class:`progface.registry.FaceDetectorSpec` (``name``, ``build(**options) -> FaceDetector``,
``summary``, ``extra``: the pip extra it needs, ``default_for``); the built-in plugin
:mod:`progface.builtin.faces` registers ``DETECTORS`` (``opencv-haar`` with
``default_for=("upscale",)``)::

    @hookimpl
    def register_face_detectors(register):
        register(FaceDetectorSpec("my-detector", build=MyDetector, summary="...", extra=None))

``restore_photos(detector=...)`` takes an instance; ``progface upscale --detector NAME`` builds
it from the spec: ``spec.build(**options)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "Face",
    "FaceDetector",
    "FaceRecord",
    "PhotoResult",
    "build_detector",
    "restore_photos",
]

if TYPE_CHECKING:
    from progface.faces.detect import (
        DEFAULT_DETECTOR,
        DETECTORS,
        Face,
        FaceDetector,
        build_detector,
    )
    from progface.faces.restore import FaceRecord, PhotoResult, restore_photos

_WHERE = {
    "DEFAULT_DETECTOR": "detect",
    "DETECTORS": "detect",
    "Face": "detect",
    "FaceDetector": "detect",
    "build_detector": "detect",
    "FaceRecord": "restore",
    "PhotoResult": "restore",
    "restore_photos": "restore",
}


def __getattr__(name: str):
    """Lazy attributes: ``import progface.faces`` stays cheap (no torch, kornia)."""
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"progface.faces.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'progface.faces' has no attribute {name!r}")
