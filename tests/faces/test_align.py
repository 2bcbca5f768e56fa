"""Similarity estimation, the templates, aligned crops and their round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from progface.faces.align import (
    ALIGNED_FACE_WIDTH,
    TEMPLATES,
    aligned_crops,
    apply_affine,
    compose,
    derive_templates,
    face_width,
    invert_affine,
    lr_from_aligned,
    similarity_transform,
)
from tests.faces.helpers import helen_dir, similarity, synthetic_face


def test_similarity_recovers_a_known_transform_exactly():
    rng = np.random.default_rng(0)
    for scale, deg in [(0.3, 17.0), (2.5, -140.0), (1.0, 180.0)]:
        m = similarity(scale, deg, 12.5, -7.25)
        src = rng.uniform(-50, 50, (5, 2))
        dst = apply_affine(m, src)
        got = similarity_transform(src, dst)
        torch.testing.assert_close(got, m, atol=1e-10, rtol=0)


def test_similarity_batched_weighted_and_never_a_reflection():
    rng = np.random.default_rng(1)
    src = rng.uniform(-1, 1, (3, 5, 2))
    ms = torch.stack([similarity(1.5, 10.0 * i, i, -i) for i in range(3)])
    dst = apply_affine(ms, src)
    torch.testing.assert_close(similarity_transform(src, dst), ms, atol=1e-10, rtol=0)
    # a mirrored target: the best similarity is a rotation/scale (det > 0), not the mirror
    mirrored = dst[0] * torch.tensor([-1.0, 1.0])
    got = similarity_transform(src[0], mirrored)
    assert torch.linalg.det(got[:, :2]) > 0
    # zero weight on an outlier ignores it
    noisy = dst[1].clone()
    noisy[4] += 40
    w = torch.tensor([1.0, 1, 1, 1, 0])
    torch.testing.assert_close(similarity_transform(src[1], noisy, w), ms[1], atol=1e-9, rtol=0)


def test_similarity_rejects_coincident_points():
    with pytest.raises(ValueError, match="coincide"):
        similarity_transform(np.ones((5, 2)), TEMPLATES["standard"])


def test_templates_are_plausible_faces():
    t = TEMPLATES["standard"]
    assert t[0, 0] < t[2, 0] < t[1, 0]  # image-left eye, nose, image-right eye
    assert t[0, 1] < t[2, 1] < t[3, 1]  # eyes above nose above mouth
    assert abs((t[0, 0] + t[1, 0]) / 2 - 63.5) < 1  # centred in the 128-px frame
    d5 = TEMPLATES["dlib5"]
    assert d5[0, 0] > d5[1, 0] > d5[3, 0] > d5[2, 0]  # dlib order: right eye (outer, inner) ...
    # a template aligned to itself is the identity
    eye = similarity_transform(t, t)
    torch.testing.assert_close(eye, torch.eye(2, 3, dtype=torch.float64), atol=1e-12, rtol=0)


def test_templates_match_the_training_labels():
    root = helen_dir()
    csv_path = root.parents[1] / "faces" / "train" / "celeba" / "landmarks68.csv" if root else None
    if csv_path is None or not csv_path.is_file():
        pytest.skip("../shared/data/faces/train/celeba/landmarks68.csv is absent")
    got = derive_templates(csv_path)
    for name, template in TEMPLATES.items():
        np.testing.assert_allclose(got[name], template, atol=0.006)
    assert abs(got["face_width"] - ALIGNED_FACE_WIDTH) < 0.006


def test_face_width_follows_the_scale():
    m = similarity(0.25, 30.0, 5, 5)  # photo -> aligned at 1/4: the face is 4x wider
    assert float(face_width(m)) == pytest.approx(4 * ALIGNED_FACE_WIDTH)
    assert float(face_width(invert_affine(m))) == pytest.approx(ALIGNED_FACE_WIDTH / 4)


def test_aligned_crop_puts_a_photo_point_where_the_matrix_says():
    photo = np.zeros((60, 80, 3), np.uint8)
    photo[23, 31] = 255  # one bright pixel at (x=31, y=23)
    m = similarity(1.0, 0.0, 40 - 31, 50 - 23)  # photo -> aligned: (31, 23) -> (40, 50)
    crop = aligned_crops(photo, m[None])[0]
    assert crop.shape == (3, 128, 128)
    y, x = divmod(int(crop[0].argmax()), 128)
    assert (x, y) == (40, 50)
    assert float(crop[0, 50, 40]) == pytest.approx(1.0)


@pytest.mark.parametrize("scale", [2.0, 0.6])  # the face enlarged in the photo, or shrunk
def test_align_then_inverse_align_round_trips_a_face(scale):
    from kornia.geometry.transform import warp_affine

    face = synthetic_face(blur=2.5)
    to_photo = similarity(scale, 25.0, 70, 40)  # aligned -> photo
    size = (int(128 * scale) + 150, int(128 * scale) + 110)
    src = torch.from_numpy(face).permute(2, 0, 1).float()[None] / 255
    photo = warp_affine(
        src, to_photo[None].float(), size[::-1], padding_mode="border", align_corners=True
    )[0]
    if scale < 1:  # a small face in the photo loses detail: compare with the blurred face
        from progface.data.degrade import resize_to

        side = round(128 * scale)
        ref = resize_to(resize_to(src, side), 128)[0]
    else:
        ref = src[0]
    back = aligned_crops(photo, invert_affine(to_photo)[None])[0]
    inner = (slice(None), slice(16, 112), slice(16, 112))
    mse = float(((back - ref)[inner] ** 2).mean())
    psnr = 10 * np.log10(1 / mse)
    assert psnr > (40 if scale > 1 else 32), psnr
    # the wrong transform is far off: the check has teeth
    wrong = compose(similarity(1.0, 0.0, 3, 0), invert_affine(to_photo))
    off = aligned_crops(photo, wrong[None])[0]
    assert 10 * np.log10(1 / float(((off - ref)[inner] ** 2).mean())) < psnr - 10


def test_aligned_crops_of_many_faces_and_of_faces_off_the_photo():
    photo = np.full((40, 50, 3), 90, np.uint8)
    mats = torch.stack(
        [similarity(2.0, 0.0, 0, 0), similarity(4.0, 45.0, -300, 10), similarity(0.1, 0.0, 60, 60)]
    )
    crops = aligned_crops(photo, mats)
    assert crops.shape == (3, 3, 128, 128)
    # off the photo, the edge is repeated: a flat photo stays flat
    torch.testing.assert_close(crops, torch.full_like(crops, 90 / 255), atol=1e-6, rtol=0)
    assert aligned_crops(photo, torch.zeros(0, 2, 3)).shape == (0, 3, 128, 128)


def test_lr_is_the_training_chain_of_the_aligned_crop():
    from progface.data.degrade import degrade_chain

    crop = torch.from_numpy(synthetic_face()).permute(2, 0, 1).float()[None] / 255
    lr = lr_from_aligned(crop)
    assert lr.shape == (1, 3, 16, 16)
    expect = degrade_chain(crop, quantize=True)[-1]
    torch.testing.assert_close(lr, expect)


@pytest.mark.parametrize(
    "width,entry", [(200, 128), (40, 128), (31, 64), (20, 64), (10, 32), (7.8, 16), (4, 16)]
)
def test_faces_enter_the_chain_at_the_size_the_photo_fills(width, entry):
    from progface.faces.align import chain_entry

    m = similarity(ALIGNED_FACE_WIDTH / width, 10.0, 3, 4)  # photo -> aligned, face `width` px
    assert chain_entry(m) == entry


def test_a_photo_at_the_lr_scale_is_its_own_lr():
    from progface.faces.align import lr_crops, pixel_scale_matrix

    photo = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    m = pixel_scale_matrix(8.0, 8.0)  # the photo's pixel grid is the 16-px LR frame
    lr = lr_crops(photo, m[None])
    torch.testing.assert_close(lr[0], torch.from_numpy(photo).permute(2, 0, 1).float() / 255)
    # a 64-px photo of an aligned face enters at 64 and goes through 64 -> 32 -> 16
    face64 = np.array(Image.fromarray(synthetic_face()).resize((64, 64), Image.BILINEAR))
    got = lr_crops(face64, pixel_scale_matrix(2.0, 2.0)[None])
    expect = lr_from_aligned(torch.from_numpy(face64).permute(2, 0, 1).float()[None] / 255)
    torch.testing.assert_close(got, expect)
