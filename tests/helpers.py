"""Small helpers several test packages share."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from PIL import Image


def smooth_faces(folder: Path, n: int, grid: int = 4, seed: int = 0) -> Path:
    """``n`` 128-px PNGs ``0.png``... in a new ``folder``: bilinear upsamplings of random
    ``grid`` x ``grid`` images (smooth, so the LR chain behaves as on photos)."""
    folder.mkdir()
    gen = torch.Generator().manual_seed(seed)
    for i in range(n):
        small = torch.rand(1, 3, grid, grid, generator=gen)
        img = torch.nn.functional.interpolate(small, size=128, mode="bilinear")[0]
        Image.fromarray((img.permute(1, 2, 0) * 255).byte().numpy()).save(folder / f"{i}.png")
    return folder


def pip_install_target(src: Path, target: Path, *extra: str) -> subprocess.CompletedProcess:
    """``pip install --no-deps --no-build-isolation --target TARGET SRC``: a package installed
    into its own folder (put it on PYTHONPATH), the test environment left as it is."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
           *extra, "--target", str(target), str(src)]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True)


def shipped_by_progface(method) -> bool:
    """A method of progface's own plugins whose weights ship inside the package (an installed
    third-party plugin may ship weights too: its own tests check them)."""
    from progface import plugins

    return bool(
        method.weights and method.weights.shipped and method.plugin in plugins.DEFAULT_PLUGINS
    )
