"""An input's outputs in ``progface upscale``: written atomically, never over existing files
unless asked, and the manifest entry that says which."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from progface.io.figures import save_atomic


def kept_entry(path: Path, existing: list[str]) -> dict[str, Any]:
    reason = f"outputs exist, not replaced without --overwrite: {', '.join(existing)}"
    return {"input": str(path), "status": "kept", "reason": reason}


def save_outputs(path: Path, files: dict, out: Path, name: str, overwrite: bool) -> dict:
    """Save the sr/ and compare/ images of one input; a file that appeared meanwhile is kept."""
    entry: dict[str, Any] = {"input": str(path), "status": "written"}
    for folder, image in files.items():
        try:
            entry[folder] = str(save_atomic(image, out / folder / name, overwrite=overwrite))
        except FileExistsError:  # keep what this run wrote before it, say which it kept
            return kept_entry(path, [str(out / folder / name)]) | {k: entry[k] for k in entry
                                                              if k in files}  # fmt: skip
    return entry
