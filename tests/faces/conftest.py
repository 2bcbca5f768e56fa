"""Fixtures for the photo tests: the shared Helen photos, one torch thread."""

from __future__ import annotations

import pytest
import torch

from tests.faces.helpers import helen_dir


@pytest.fixture
def helen():
    """(folder, {file: [68x2 arrays]}) of the shared Helen photos; skips when absent."""
    folder = helen_dir()
    if folder is None:
        pytest.skip("../shared/data/photos/helen_train is absent (only CI and the team have it)")
    from progface.data.landmarks_io import read_photo_landmarks

    return folder, read_photo_landmarks(folder / "landmarks68.csv")


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
