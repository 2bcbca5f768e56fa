"""torchrun with the gloo backend, 2 processes on CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from progface.train.checkpoint import latest_checkpoint
from progface.weights import load_safetensors

REPO = Path(__file__).resolve().parents[2]


def _torchrun(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           *args]  # fmt: skip
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def test_two_processes_equal_one_process_with_the_global_batch(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    run = _torchrun("tests/train/ddp_toy.py", str(tmp_path / "ddp"), "3")
    assert run.returncode == 0, run.stderr[-3000:]
    single = subprocess.run([sys.executable, "tests/train/ddp_toy.py", str(tmp_path / "one"), "6"],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    a, meta_a = load_safetensors(latest_checkpoint(tmp_path / "ddp" / "checkpoints"))
    b, meta_b = load_safetensors(latest_checkpoint(tmp_path / "one" / "checkpoints"))
    assert meta_a["world_size"] == 2 and len(meta_a["rng"]) == 2 and meta_b["world_size"] == 1
    # rank r takes half r of each global batch and gradients are averaged, so 2 x 3 == 1 x 6
    for k in a:
        if k.startswith("model.") or k.startswith("optim."):
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
