"""Face detectors: input handling, errors naming the extra, and real Helen photos."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from progface.faces.align import TEMPLATES, apply_affine, points_from_68, similarity_transform
from progface.faces.detect import DETECTORS, Face, FaceDetector, as_uint8_rgb, build_detector

PHOTO = "100032540.jpg"  # one annotated face; found by every detector at 30 px


def test_images_in_any_layout_become_uint8_rgb():
    arr = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    chw = torch.from_numpy(arr).permute(2, 0, 1)
    np.testing.assert_array_equal(as_uint8_rgb(chw), arr)
    np.testing.assert_array_equal(as_uint8_rgb(chw.float() / 255), arr)
    np.testing.assert_array_equal(as_uint8_rgb(arr[:, ::-1])[:, ::-1], arr)
    with pytest.raises(ValueError, match="RGB image HxWx3"):
        as_uint8_rgb(np.zeros((7, 9), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        as_uint8_rgb(np.zeros((7, 9, 3), np.float32))


def test_unknown_detector_names_suggest_the_closest():
    with pytest.raises(ValueError, match="did you mean 'opencv-haar'"):
        build_detector("opencv-har")


def test_missing_dlib_names_the_extra(monkeypatch):
    from progface.faces import detect

    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib -> ImportError
    monkeypatch.setattr(detect, "_PREDICTORS", {})
    for name in ("dlib-hog", "dlib-cnn"):
        with pytest.raises(ImportError, match=r"pip install 'progface\[faces\]'"):
            build_detector(name, landmarks="box")
    with pytest.raises(ImportError, match=r"progface\[faces\]"):
        detect._predictor("68")


def test_missing_face_models_name_the_extra(monkeypatch):
    import importlib.util

    from progface.faces import detect

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"face-recognition-models.*progface\[faces\]"):
        detect.dlib_data_file("shape_predictor_5_face_landmarks.dat")


def test_a_cascade_missing_from_the_opencv_wheel_is_explained(monkeypatch, tmp_path):
    cv2 = pytest.importorskip("cv2")
    monkeypatch.setattr(cv2.data, "haarcascades", str(tmp_path))
    with pytest.raises(ImportError, match="no longer bundle cascades"):
        build_detector("opencv-haar", landmarks="box")


def test_detectors_follow_the_protocol():
    pytest.importorskip("dlib")
    pytest.importorskip("cv2")
    det = build_detector(landmarks="box")  # the default
    assert isinstance(det, FaceDetector) and det.name == "opencv-haar"
    assert set(DETECTORS) == {"dlib-hog", "dlib-cnn", "opencv-haar"}
    with pytest.raises(ValueError, match="landmarks"):
        build_detector("dlib-hog", landmarks="7")


def test_enlargement_is_capped_with_a_warning():
    pytest.importorskip("dlib")
    det = build_detector("dlib-hog", landmarks="box", min_face=20, max_detect_pixels=8e5)
    blank = np.full((400, 500, 3), 128, np.uint8)
    with pytest.warns(UserWarning, match="enlarged x2.00 for detection"):
        assert det.detect(blank) == []
    assert det.last_factor == pytest.approx(2.0)
    det.min_face = 50  # 77 / 50 = x1.54 fits the budget: no warning
    det.detect(blank)
    assert det.last_factor == pytest.approx(77 / 50)


def _shrunk(helen, name: str, width: float):
    folder, labels = helen
    img = Image.open(folder / name).convert("RGB")
    p68 = labels[name][0]
    f = width / (p68[:, 0].max() - p68[:, 0].min())
    small = img.resize((round(img.width * f), round(img.height * f)), Image.Resampling.BILINEAR)
    sx, sy = small.width / img.width, small.height / img.height
    return np.asarray(small), (p68 + 0.5) * [sx, sy] - 0.5


def _found(faces: list[Face], p68: np.ndarray) -> Face:
    """The detection matching the labelled face (box centre inside, widths within 2x)."""
    x0, y0 = p68.min(0)
    x1, y1 = p68.max(0)
    hits = [
        f
        for f in faces
        if x0 <= f.center[0] <= x1
        and y0 <= f.center[1] <= y1
        and 0.5 <= (f.box[2] - f.box[0]) / (x1 - x0) <= 2
    ]
    assert hits, f"no detection matches the labelled face; got {faces}"
    return hits[0]


def _alignment_error(face: Face, p68: np.ndarray) -> float:
    gt5 = points_from_68(p68)
    m_gt = similarity_transform(gt5, TEMPLATES["standard"])
    m = similarity_transform(face.landmarks5, TEMPLATES[face.scheme])
    return float((apply_affine(m, gt5) - apply_affine(m_gt, gt5)).norm(dim=-1).mean())


@pytest.mark.parametrize(
    "name,landmarks",
    [("dlib-hog", "68"), ("dlib-hog", "5"), ("opencv-haar", "68"), ("opencv-haar", "box")],
)
def test_the_annotated_face_is_found_in_a_small_photo(helen, name, landmarks):
    pytest.importorskip("dlib")
    if name == "opencv-haar":
        pytest.importorskip("cv2")
    arr, p68 = _shrunk(helen, PHOTO, 30)
    det = build_detector(name, landmarks=landmarks)
    face = _found(det.detect(arr), p68)
    assert face.scheme == ("dlib5" if landmarks == "5" else "standard")
    # the alignment it gives is within a few pixels of the labels' (in the 128-px frame)
    assert _alignment_error(face, p68) < (8 if landmarks == "box" else 3)
    # tensors give the same faces as arrays
    again = det.detect(torch.from_numpy(arr.copy()).permute(2, 0, 1))
    assert [f.box for f in again] == [f.box for f in det.detect(arr)]


@pytest.mark.slow
def test_the_cnn_detector_finds_a_20_px_face(helen):
    pytest.importorskip("dlib")
    arr, p68 = _shrunk(helen, PHOTO, 20)
    face = _found(build_detector("dlib-cnn").detect(arr), p68)
    assert _alignment_error(face, p68) < 3


def test_several_faces_in_one_photo(helen):
    pytest.importorskip("dlib")
    a, pa = _shrunk(helen, PHOTO, 30)
    b, pb = _shrunk(helen, "1004467229.jpg", 25)
    canvas = np.full(
        (max(a.shape[0], b.shape[0]) + 20, a.shape[1] + b.shape[1] + 60, 3), 110, np.uint8
    )
    canvas[10 : 10 + a.shape[0], 10 : 10 + a.shape[1]] = a
    ox = 50 + a.shape[1]
    canvas[10 : 10 + b.shape[0], ox : ox + b.shape[1]] = b
    faces = build_detector("dlib-hog").detect(canvas)
    _found(faces, pa + 10)
    _found(faces, pb + [ox, 10])


def test_the_default_detector_finds_a_10_px_face(helen):
    pytest.importorskip("dlib")
    pytest.importorskip("cv2")
    arr, p68 = _shrunk(helen, PHOTO, 10)
    face = _found(build_detector().detect(arr), p68)
    assert _alignment_error(face, p68) < 3


def test_a_real_photo_through_the_pipeline(helen):
    """Default detector, a 10-px face, x8: the face is restored where the labels put it."""
    pytest.importorskip("dlib")
    pytest.importorskip("cv2")
    from progface.faces import restore_photos
    from progface.faces.paste import enlarge
    from progface.models.interpolate import Interpolate

    arr, p68 = _shrunk(helen, PHOTO, 10)
    # max_face 14: the width read from the 5 points is 11.3 px for this 9.9-px face
    (res,) = restore_photos([arr], Interpolate(mode="bicubic", size=128), scale=8, max_face=14)
    (rec,) = [f for f in res.faces if f.action == "restored"]
    assert rec.width == pytest.approx(10, rel=0.25)
    x0, y0, x1, y1 = rec.pasted
    cx, cy = (points_from_68(p68).mean(0) + 0.5) * 8 - 0.5
    assert x0 < cx < x1 and y0 < cy < y1
    base = enlarge(arr, 8)
    assert res.image.shape == base.shape
    assert (res.image[y0:y1, x0:x1] != base[y0:y1, x0:x1]).any()
    mse = ((res.image[y0:y1, x0:x1].astype(float) - base[y0:y1, x0:x1]) ** 2).mean()
    assert 10 * np.log10(255**2 / mse) > 28  # a bicubic "SR" blends in: no seam, no colour step
