"""Built-in plugin: the face detectors of :mod:`progface.faces.detect` (``opencv-haar``, the
default of ``upscale``, ``dlib-hog``, ``dlib-cnn``). Registering imports neither OpenCV nor
dlib: a detector imports them when it is built."""

from __future__ import annotations

from progface.hookspecs import hookimpl
from progface.registry import FaceDetectorSpec


def _first_sentence(doc: str) -> str:
    text = " ".join(doc.split()).replace("``", "")
    return text.split(". ")[0].split("; ")[0].rstrip(".")


@hookimpl
def register_face_detectors(register):
    from progface.faces.detect import DEFAULT_DETECTOR, DETECTORS

    for name, cls in DETECTORS.items():
        register(
            FaceDetectorSpec(
                name,
                build=cls,
                summary=_first_sentence(cls.__doc__ or name),
                extra="faces",
                default_for=("upscale",) if name == DEFAULT_DETECTOR else (),
            )
        )
