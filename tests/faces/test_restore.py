"""restore_photos on synthetic photos with a known face and a fake detector."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from progface.faces.align import (
    ALIGNED_FACE_WIDTH,
    TEMPLATES,
    apply_affine,
    invert_affine,
    lr_from_aligned,
)
from progface.faces.detect import Face
from progface.faces.paste import enlarge, paste_matrix
from progface.faces.restore import output_scale, restore_photos
from progface.models.interpolate import Interpolate
from tests.faces.helpers import FakeDetector, photo_with_face, similarity, synthetic_face

BICUBIC = Interpolate(mode="bicubic", size=128)


def placed(scale: float, degrees: float, centre: tuple[float, float]) -> torch.Tensor:
    """aligned -> photo similarity putting the aligned face centre (63.5, 70) at ``centre``."""
    m = similarity(scale, degrees, 0, 0)
    c = apply_affine(m, torch.tensor([[63.5, 70.0]]))[0]
    m[:, 2] = torch.tensor(centre, dtype=torch.float64) - c
    return m


def face_at(to_photo: torch.Tensor, jitter: float = 0.0) -> Face:
    pts = apply_affine(to_photo, TEMPLATES["standard"]).numpy() + jitter
    x0, y0 = pts.min(0) - 3
    x1, y1 = pts.max(0) + 3
    return Face((x0, y0, x1, y1), 1.0, pts)


def psnr(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, peak: float) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(10 * np.log10(peak**2 / ((a - b) ** 2).mean()))


@pytest.fixture(scope="module")
def scene():
    face = synthetic_face()
    to_photo = placed(0.15, 15.0, (50.0, 40.0))  # a face ~9.5 px wide, tilted, off-centre
    return face, to_photo, photo_with_face(face, to_photo, size=(96, 80))


def test_the_face_is_aligned_from_the_detected_points(scene):
    face, to_photo, photo = scene
    (res,) = restore_photos([photo], BICUBIC, scale=4, detector=FakeDetector([face_at(to_photo)]))
    (rec,) = res.faces
    assert rec.action == "restored"
    np.testing.assert_allclose(rec.matrix, invert_affine(to_photo).numpy(), atol=1e-9)
    assert rec.width == pytest.approx(0.15 * ALIGNED_FACE_WIDTH)
    # the LR the network saw is the LR of the true face
    truth = lr_from_aligned(torch.from_numpy(face).permute(2, 0, 1).float()[None] / 255)[0]
    assert rec.lr.shape == (3, 16, 16) and rec.sr.shape == (3, 128, 128)
    good = psnr(rec.lr, truth, 1.0)
    assert good > 33, good
    # points off by 1 photo px (a quarter of the eye distance) give a clearly worse LR
    (off,) = restore_photos(
        [photo], BICUBIC, scale=4, detector=FakeDetector([face_at(to_photo, jitter=1.0)])
    )
    assert psnr(off.faces[0].lr, truth, 1.0) < good - 4


def test_bicubic_method_restores_the_face_in_place(scene):
    _, to_photo, photo = scene
    (res,) = restore_photos([photo], BICUBIC, scale=4, detector=FakeDetector([face_at(to_photo)]))
    assert res.scale == 4 and res.image.shape == (320, 384, 3) and res.size == (96, 80)
    base = enlarge(photo, 4, "bicubic")
    x0, y0, x1, y1 = res.faces[0].pasted
    region = (slice(y0, y1), slice(x0, x1))
    assert psnr(res.image[region], base[region], 255) > 34
    outside = np.ones(base.shape[:2], bool)
    outside[region] = False
    np.testing.assert_array_equal(res.image[outside], base[outside])
    assert (res.image[region] != base[region]).any()  # it did paste something


def test_the_sr_face_lands_where_the_face_is(scene):
    _, to_photo, photo = scene

    def red(lr):
        out = torch.zeros(lr.shape[0], 3, 128, 128)
        out[:, 0] = 1
        return out

    (res,) = restore_photos(
        [photo], red, scale=4, color=None, detector=FakeDetector([face_at(to_photo)])
    )
    # the face centre (63.5, 70) of the aligned frame, in the x4 output
    c = apply_affine(paste_matrix(invert_affine(to_photo), 4), torch.tensor([[63.5, 70.0]]))[0]
    cx, cy = round(float(c[0])), round(float(c[1]))
    assert tuple(res.image[cy, cx]) == (255, 0, 0)
    # and the eyes: template points map to the photo's eye positions x4
    eye = apply_affine(to_photo, TEMPLATES["standard"][:1])[0] * 4 + 1.5
    assert tuple(res.image[round(float(eye[1])), round(float(eye[0]))]) == (255, 0, 0)
    assert tuple(res.image[5, 5]) != (255, 0, 0)  # far away: background


def test_faces_of_many_photos_share_batches_and_results_stream_in_order(scene):
    _, to_photo, photo = scene
    other = placed(0.14, -10.0, (30.0, 35.0))
    det = FakeDetector([face_at(to_photo), face_at(other)])
    sizes, consumed = [], []

    def method(lr):
        sizes.append(lr.shape[0])
        return BICUBIC(lr)

    def photos():
        for i in range(5):
            consumed.append(i)
            yield photo

    results = []
    for res in restore_photos(photos(), method, scale=2, detector=det, batch_size=3):
        if not results:
            first_seen_after = len(consumed)
        results.append(res)
    assert sizes == [3, 3, 3, 1]
    assert first_seen_after == 2  # photo 0 came out as soon as its faces were through
    assert [r.source for r in results] == [f"<image {i}>" for i in range(5)]
    assert all([f.action for f in r.faces] == ["restored"] * 2 for r in results)


def test_output_pixel_budget_reduces_the_scale():
    photo = np.full((50, 60, 3), 120, np.uint8)
    assert output_scale(60, 50, 8, 60 * 50 * 9 + 1) == 3
    assert output_scale(6000, 4000, 8, 100e6) == 2
    assert output_scale(60, 50, 8, 10) == 1
    with pytest.warns(UserWarning, match="scale reduced from x8 to x3"):
        (res,) = restore_photos(
            [photo], BICUBIC, scale=8, detector=FakeDetector([]), max_output_pixels=60 * 50 * 9 + 1
        )
    assert res.scale == 3 and res.image.shape == (150, 180, 3)
    assert "x8 to x3" in res.notes[0] and res.faces == []


def test_large_faces_are_left_to_the_background_unless_asked(scene):
    face, _, _ = scene
    to_photo = placed(1.6, 5.0, (110.0, 100.0))  # a face ~100 px wide
    photo = photo_with_face(face, to_photo, size=(220, 200))
    base = enlarge(photo, 2, "bicubic")
    det = FakeDetector([face_at(to_photo)])
    (res,) = restore_photos([photo], BICUBIC, scale=2, detector=det)
    assert res.faces[0].action == "too-large" and res.faces[0].sr is None
    np.testing.assert_array_equal(res.image, base)
    (res,) = restore_photos([photo], BICUBIC, scale=2, detector=det, restore_large=True)
    assert res.faces[0].action == "restored" and (res.image != base).any()
    (res,) = restore_photos([photo], BICUBIC, scale=2, detector=det, max_face=200)
    assert res.faces[0].action == "restored"


def test_small_and_off_centre_faces(scene):
    _, to_photo, photo = scene  # a 9.5-px face at (50, 40) of a 96x80 photo
    corner = placed(0.12, 0.0, (15.0, 15.0))
    det = FakeDetector([face_at(corner), face_at(to_photo)])
    (res,) = restore_photos([photo], BICUBIC, scale=2, detector=det, only_center_face=True)
    assert [f.action for f in res.faces] == ["not-center", "restored"]
    (res,) = restore_photos([photo], BICUBIC, scale=2, detector=det, min_face=9)
    assert [f.action for f in res.faces] == ["too-small", "restored"]  # 7.6 and 9.5 px


def test_unreadable_files_are_reported_and_the_rest_go_on(tmp_path, scene):
    _, to_photo, photo = scene
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    from PIL import Image

    good = tmp_path / "good.png"
    Image.fromarray(photo).save(good)
    det = FakeDetector([face_at(to_photo)])
    results = list(restore_photos([bad, good], BICUBIC, scale=2, detector=det, keep_crops=False))
    assert results[0].image is None and "not a readable image" in results[0].error
    assert results[1].error is None and results[1].source == str(good)
    assert results[1].faces[0].action == "restored" and results[1].faces[0].sr is None
    assert det.calls == 1


def test_a_detector_failing_on_one_photo_loses_that_photo_only(scene):
    _, to_photo, photo = scene

    class Flaky(FakeDetector):
        def detect(self, image):
            if self.calls == 0:
                self.calls += 1
                raise RuntimeError("(-215:Assertion failed)\n in detectMultiScale")
            return super().detect(image)

    det = Flaky([face_at(to_photo)])
    first, second = restore_photos([photo, photo], BICUBIC, scale=2, detector=det, keep_crops=False)
    assert first.image is None and first.faces == []
    assert first.error == "face detector 'fake' failed: (-215:Assertion failed) in detectMultiScale"
    assert second.error is None and second.faces[0].action == "restored" and det.calls == 2


def test_a_method_with_the_wrong_output_size_is_an_error(scene):
    _, to_photo, photo = scene
    with pytest.raises(ValueError, match=r"needs \[B, 3, 128, 128\]"):
        list(restore_photos([photo], lambda lr: lr, detector=FakeDetector([face_at(to_photo)])))


def test_bad_arguments():
    with pytest.raises(ValueError, match="scale"):
        list(restore_photos([], BICUBIC, scale=0, detector=FakeDetector([])))
    with pytest.raises(ValueError, match="unknown face detector 'dlib-hgo'.*dlib-hog"):
        list(restore_photos([], BICUBIC, detector="dlib-hgo"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(restore_photos([], BICUBIC, detector=FakeDetector([]))) == []
