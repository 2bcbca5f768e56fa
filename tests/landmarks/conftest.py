"""Fixtures for the landmark tests: a tiny labelled face folder and the authors' checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path | None:
    """``../shared`` beside the repository (or ``$PROGFACE_SHARED``), None when absent."""
    import os

    path = Path(os.environ.get("PROGFACE_SHARED") or REPO.parent / "shared")
    return path if path.is_dir() else None


# a plausible 68-point face in the 128-px frame: every point distinct, eyes level
_TEMPLATE = np.array(
    [(28 + 4.5 * i, 60 + 3.4 * i - 0.21 * i * i) for i in range(17)]  # jaw (arc)
    + [(38 + 5 * i, 52 - (2 if i in (1, 2, 3) else 0)) for i in range(5)]  # right brow
    + [(70 + 5 * i, 52 - (2 if i in (1, 2, 3) else 0)) for i in range(5)]  # left brow
    + [(64, 60 + 4 * i) for i in range(4)]  # nose bridge
    + [(56 + 4 * i, 78 + (1 if i in (1, 2, 3) else 0)) for i in range(5)]  # nostrils
    + [(44, 62), (48, 59), (52, 59), (56, 62), (52, 64), (48, 64)]  # right eye
    + [(72, 62), (76, 59), (80, 59), (84, 62), (80, 64), (76, 64)]  # left eye
    + [(52 + 4 * i, 92 - (2 if 1 <= i <= 5 else 0)) for i in range(7)]  # upper lip
    + [(72 - 4 * i, 96 + (1 if i < 4 else 0)) for i in range(1, 6)]  # lower lip
    + [(54, 92), (60, 93), (64, 93), (68, 93), (74, 92), (68, 94), (64, 94), (60, 94)],  # inner
    dtype=np.float32,
)
assert _TEMPLATE.shape == (68, 2)


def template_points() -> torch.Tensor:
    return torch.from_numpy(_TEMPLATE.copy())


def write_face_folder(folder: Path, n: int = 4, size: int = 128, seed: int = 0) -> Path:
    """``n`` synthetic faces (dark features on a skin-coloured disc) + ``landmarks68.csv``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["file,landmarks_from," + ",".join(f"x{i},y{i}" for i in range(68))]
    yy, xx = np.mgrid[0:size, 0:size]
    for k in range(n):
        pts = _TEMPLATE * size / 128 + rng.normal(0, 1.0, size=(68, 2)).astype(np.float32)
        img = np.full((size, size, 3), 60, np.float64)
        disc = (xx - size / 2) ** 2 / (0.36 * size) ** 2 + (yy - size * 0.6) ** 2 / (
            0.45 * size
        ) ** 2
        img[disc < 1] = (205, 160, 135)
        for x, y in pts:
            img[np.hypot(xx - x, yy - y) < 1.5 * size / 128] = (40, 25, 20)
        img += rng.normal(0, 4, img.shape)
        name = f"face_{k:02d}.png"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / name)
        src = "gt_300w" if k % 2 == 0 else "dlib_det"
        rows.append(f"{name},{src}," + ",".join(f"{x:.2f},{y:.2f}" for x, y in pts))
    (folder / "landmarks68.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture
def face_folder(tmp_path) -> Path:
    return write_face_folder(tmp_path / "faces")


@pytest.fixture
def pfsr_checkpoint() -> Path:
    """The authors' distilled-FAN pickle from ../shared (skips when absent)."""
    root = shared_dir()
    path = root / "reference" / "weights" / "pfsr_compressed_fan_011000.pth" if root else None
    if path is None or not path.is_file():
        pytest.skip("../shared/reference/weights/pfsr_compressed_fan_011000.pth is absent")
    return path


@pytest.fixture
def fan4_tsv() -> Path:
    root = shared_dir()
    path = root / "reference" / "fan4_state_dict.tsv" if root else None
    if path is None or not path.is_file():
        pytest.skip("../shared/reference/fan4_state_dict.tsv is absent")
    return path


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a busy 2-core machine two threads made FAN-4 70x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
