"""Shared fixtures: the ../shared folder, in-process plugin registration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """``../shared`` beside the repository (or ``$PROGFACE_SHARED``), None when absent."""
    path = Path(os.environ.get("PROGFACE_SHARED") or REPO.parent / "shared")
    return path if (path / "data" / "faces").is_dir() else None


@pytest.fixture
def faces_dir():
    """Root of the shared face data; skips the test when it is absent (a user's clone)."""
    root = shared_dir()
    if root is None:
        pytest.skip("../shared/data/faces is absent (only CI and the team have it)")
    return root / "data" / "faces"


@pytest.fixture
def register_plugin():
    """Register plugin objects in-process for one test; unregistered afterwards."""
    from progface import plugins

    plugins.load_plugins()
    added = []

    def register(obj, name):
        plugins.pm.register(obj, name=name)
        added.append(name)
        plugins.reset()

    yield register
    for name in added:
        plugins.pm.unregister(name=name)
    plugins.failures.clear()
    plugins.reset()
