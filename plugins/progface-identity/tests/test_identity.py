"""The identity metric: known answers, dlib's chip geometry, real faces, the installed plugin."""

from __future__ import annotations

import csv
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import progface_identity as pid

PACKAGE = Path(__file__).resolve().parents[1]


def smooth_faces(seeds, size: int = 128) -> torch.Tensor:
    """Smooth random images ``[B,3,size,size]`` in [0, 1] (not faces: nothing is detected)."""
    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        small = Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8))
        arr = np.asarray(small.resize((size, size), Image.BICUBIC), dtype=np.float32)
        out.append(torch.from_numpy(arr / 255).permute(2, 0, 1))
    return torch.stack(out)


def test_identical_faces_score_one_and_different_ones_less():
    x, y = smooth_faces([0, 1, 2]), smooth_faces([10, 11, 12])
    same = pid.identity(x, x.clone())
    assert same.shape == (3,)
    assert torch.allclose(same, torch.ones(3, dtype=same.dtype), atol=1e-6, rtol=0)
    other = pid.identity(x, y)
    assert (other < 0.99).all() and (other > -1).all()
    # symmetric, and one face's score does not depend on its batch
    assert torch.allclose(pid.identity(y, x), other, atol=1e-12)
    assert torch.allclose(pid.identity(x[1:2], y[1:2]), other[1:2], atol=1e-12)


def test_cached_embeddings_equal_fresh_ones():
    x = smooth_faces([3, 4])
    pid._cache.clear()
    fresh = pid.embed(x)
    assert len(pid._cache) == 2
    assert torch.equal(pid.embed(x), fresh)
    assert fresh.shape == (2, 128) and fresh.dtype == torch.float64


def test_chip_is_sampled_as_dlib_extract_image_chip_samples_it():
    """The oracle: dlib's own chip extraction for the same rectangle, to rounding; a box one
    pixel off is far from it, so the comparison can tell."""
    import dlib

    face = smooth_faces([5])
    arr = np.ascontiguousarray((face[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    rect = dlib.drectangle(25.3, 42.1, 103.4, 120.2)  # pixel-centre coordinates at 128 px
    theirs = dlib.extract_image_chip(arr, dlib.chip_details(rect, dlib.chip_dims(150, 150)))
    corners = (rect.left(), rect.top(), rect.right(), rect.bottom())
    ours = pid.face_chips(torch.from_numpy(arr.copy()).permute(2, 0, 1)[None] / 255.0,
                          tuple((v + 0.5) / 128 for v in corners))[0]  # fmt: skip
    diff = np.abs(ours.astype(int) - theirs.astype(int))
    assert ours.shape == (150, 150, 3) and diff.max() <= 1 and diff.mean() < 0.6
    shifted = pid.face_chips(torch.from_numpy(arr.copy()).permute(2, 0, 1)[None] / 255.0,
                             tuple((v + 1.5) / 128 for v in corners))[0]  # fmt: skip
    assert np.abs(shifted.astype(int) - theirs.astype(int)).mean() > 3


def test_missing_dlib_is_a_one_line_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # what an uninstalled module looks like
    monkeypatch.delitem(sys.modules, "progface_identity")
    with pytest.raises(ImportError) as err:
        importlib.import_module("progface_identity")
    message = str(err.value)
    assert "\n" not in message
    assert "dlib-bin" in message and "pip install dlib-bin face-recognition-models" in message


def test_rejects_mismatched_or_non_rgb_faces():
    with pytest.raises(ValueError, match="differ"):
        pid.identity(smooth_faces([0]), smooth_faces([0], size=64))
    with pytest.raises(ValueError, match=r"\[B,3,H,W\]"):
        pid.identity(torch.zeros(1, 1, 128, 128), torch.zeros(1, 1, 128, 128))


def _faces_by_identity(folder: Path, identities: int, per_identity: int):
    by_id: dict[str, list[str]] = {}
    for row in csv.DictReader(open(folder / "index.csv")):
        by_id.setdefault(row["celeba_identity"], []).append(row["file"])
    chosen = [i for i in sorted(by_id) if len(by_id[i]) >= per_identity][:identities]
    files = [(i, f) for i in chosen for f in sorted(by_id[i])[:per_identity]]
    faces = [np.asarray(Image.open(folder / f).convert("RGB"), dtype=np.float32) for _, f in files]
    images = torch.from_numpy(np.stack(faces) / 255).permute(0, 3, 1, 2).contiguous()
    return images, np.array([i for i, _ in files])


def test_same_person_is_closer_than_different_people(heldout_faces):
    """Real held-out faces, 6 people x 3 photos: pairs of one person's photos must score above
    pairs of different people (the whole face resized to 150 px instead of the fitted chip
    scores AUC 0.72 on such pairs: the chip matters)."""
    images, labels = _faces_by_identity(heldout_faces, identities=6, per_identity=3)
    e = pid.embed(images)
    e = e / e.norm(dim=1, keepdim=True)
    cos = (e @ e.T).numpy()
    iu = np.triu_indices(len(labels), 1)
    same = (labels[:, None] == labels[None])[iu]
    pairs = cos[iu]
    auc = (pairs[same][:, None] > pairs[~same][None]).mean()
    assert auc > 0.95, auc
    assert pairs[same].mean() > pairs[~same].mean() + 0.05
    # and the metric itself: a photo against another photo of the same person
    first = [int(np.flatnonzero(labels == i)[0]) for i in dict.fromkeys(labels)]
    second = [k + 1 for k in first]
    assert (pid.identity(images[first], images[second]) > 0.85).all()


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """This package pip-installed (no dependencies) into a --target folder; the environment
    that puts it on PYTHONPATH for ``python -m progface``."""
    tmp = tmp_path_factory.mktemp("identity-install")
    src = tmp / "src"  # a copy: building in place would leave build/ in the repository
    shutil.copytree(PACKAGE, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    target = tmp / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--target", str(target), str(src)],
        check=True, capture_output=True,
    )  # fmt: skip
    path = os.pathsep.join(p for p in (str(target), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "PROGFACE_STRICT_PLUGINS": "1"}


def _progface(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "progface", *args], capture_output=True, text=True, env=env
    )


def test_installed_plugin_registers_the_metric(installed):
    proc = _progface(installed, "plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["identity"]["registered"] == {"metrics": ["identity"]}
    assert rows["identity"]["version"] == "0.1.0"


def test_bench_prints_an_identity_column(installed, heldout_faces, tmp_path):
    proc = _progface(installed, "bench", "--methods", "bicubic", "--metrics", "psnr,identity",
                     "--data", str(heldout_faces), "--limit", "8", "--out", str(tmp_path),
                     "--device", "cpu")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    head = next(line for line in proc.stdout.splitlines() if line.startswith("| method"))
    assert head.split("|")[2:4] == [" PSNR (dB) ", " identity (cosine) "]
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| bicubic"))
    psnr, identity, images = (float(c) for c in re.findall(r"\|\s*([\d.]+)", row))
    assert images == 8 and 0.5 < identity < 1.0 and 15 < psnr < 40
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["methods"]["bicubic"]["identity"] == pytest.approx(identity, abs=5e-5)
