"""Fixtures: the plugin package (installed, or else from this source folder) and real faces."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("progface_espcn") is None:  # testing the source, not installed
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


@pytest.fixture(autouse=True, scope="session")
def espcn_registered():
    """The plugin in this process's registries: through its entry point when installed, else
    registered by hand from the source folder (as the entry point would)."""
    from progface import plugins

    import progface_espcn

    plugins.load_plugins()
    if not plugins.pm.has_plugin("espcn"):
        plugins.pm.register(progface_espcn, name="espcn")
        plugins.reset()
    assert plugins.get("methods", "espcn").load is progface_espcn.load
