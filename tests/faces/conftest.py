"""Fixtures for the photo tests: the shared Helen photos, one torch thread."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from tests.faces.helpers import helen_dir


@pytest.fixture
def helen():
    """(folder, {file: [68x2 arrays]}) of the shared Helen photos; skips when absent."""
    folder = helen_dir()
    if folder is None:
        pytest.skip("../shared/data/photos/helen_train is absent (only CI and the team have it)")
    labels: dict[str, list[np.ndarray]] = {}
    with (folder / "landmarks68.csv").open(newline="") as fh:
        rows = csv.reader(fh)
        next(rows)
        for row in rows:
            labels.setdefault(row[0], []).append(np.array(row[2:], float).reshape(68, 2))
    return folder, labels


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
