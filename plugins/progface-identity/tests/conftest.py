"""Fixtures: the plugin module (installed, or else from this source folder) and real faces."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("progface_identity") is None:  # testing the source, not installed
    sys.path.insert(0, str(PACKAGE))


@pytest.fixture
def heldout_faces() -> Path:
    """``val/celeba_heldout_ids`` of the team's shared data (``$PROGFACE_SHARED`` or ``shared``
    beside the progface repository); skips when absent, as in a user's clone."""
    root = Path(os.environ.get("PROGFACE_SHARED") or PACKAGE.parents[2] / "shared")
    folder = root / "data" / "faces" / "val" / "celeba_heldout_ids"
    if not (folder / "index.csv").is_file():
        pytest.skip(f"{folder} is absent (only CI and the team have the shared faces)")
    return folder
