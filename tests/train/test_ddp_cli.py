"""``torchrun -m progface train``: the progressive recipe with gloo, 2 processes on CPU."""

from __future__ import annotations

from progface.train.checkpoint import latest_checkpoint
from progface.weights import load_safetensors
from tests.train.test_ddp import _torchrun


def test_progface_train_under_torchrun(tmp_path):
    from tests.helpers import smooth_faces

    faces = smooth_faces(tmp_path / "faces", 4, grid=4)
    out = tmp_path / "run"
    run = _torchrun("-m", "progface", "train", "--preset", "table2-pixel-wgan", "--out", str(out),
                    "--data", str(faces), "--val", str(faces),
                    "--set", "options.iterations=[1, 1]", "--set", "options.channels=[16, 8, 8, 8]",
                    "--set", "loop.batch_size=2", "--set", "data.workers=0",
                    "--set", "loop.progress=false")  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    tensors, meta = load_safetensors(latest_checkpoint(out / "checkpoints"))
    assert meta["world_size"] == 2 and meta["iteration"] == 2
    assert meta["recipe_state"] == {"step": 2, "alpha": 0.0}
    assert "rng.1.torch" in tensors
    assert (out / "samples" / "iter_00000002.png").is_file()
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert sum('"kind": "val"' in line for line in lines) == 1
