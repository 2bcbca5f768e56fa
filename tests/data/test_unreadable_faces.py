"""Training data with broken files: left out when the set is built, or skipped later."""

from __future__ import annotations

import pytest
from PIL import Image

from progface.data.datasets import FaceFolder
from progface.data.errors import ImageError


def _write_folder(folder, make_smooth, sizes):
    folder.mkdir(exist_ok=True)
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(make_smooth(h, w, i)).save(folder / f"img{i}.png")
    return folder


def test_unreadable_files_are_left_out_and_a_later_failure_is_skipped(tmp_path, make_smooth,
                                                                      capsys):  # fmt: skip
    from torch.utils.data import ConcatDataset, Subset

    from progface.data.datasets import SkipUnreadable, unreadable_files

    root = _write_folder(tmp_path / "faces", make_smooth, [(128, 128)] * 3)
    (root / "empty.png").write_bytes(b"")
    (root / "garbage.jpg").write_bytes(b"not an image at all")
    Image.fromarray(make_smooth(128, 128, 9)).save(root / "img1.png")
    data = (root / "img1.png").read_bytes()
    (root / "img1.png").write_bytes(data[: len(data) // 2])  # header fine, pixels cut
    faces = FaceFolder(root)
    assert [p.name for p in faces.files] == ["img0.png", "img1.png", "img2.png"]
    reasons = {p.name: why for p, why in unreadable_files(ConcatDataset([Subset(faces, [0])]))}
    assert reasons["empty.png"] == "empty file (0 bytes)"
    assert reasons["garbage.jpg"].startswith("not a readable image: cannot identify image file")
    safe = SkipUnreadable(faces)
    assert safe[1]["name"] == "img2.png" and safe[1]["name"] == "img2.png"
    assert capsys.readouterr().err.count("img1.png: truncated image") == 1  # warned once
    with pytest.raises(ImageError):
        faces[1]
