"""The shipped fan-distilled weights: file, hash, config, model card, landmark quality."""

from __future__ import annotations

from pathlib import Path

import torch

from progface.weights import PACKAGE_WEIGHTS, load_safetensors, sha256_of
from progface.weights.landmarks import FAN_DISTILLED_SHIPPED, load_fan_distilled

SHIPPED = PACKAGE_WEIGHTS / FAN_DISTILLED_SHIPPED.filename
CARD = PACKAGE_WEIGHTS / "fan_distilled_landmarks.md"


def test_file_hash_and_config():
    assert SHIPPED.is_file(), f"{SHIPPED} is missing from the package"
    assert 1_250_000 < SHIPPED.stat().st_size < 1_400_000  # 321,412 float32 + BN buffers
    assert len(FAN_DISTILLED_SHIPPED.sha256) == 64
    assert sha256_of(SHIPPED) == FAN_DISTILLED_SHIPPED.sha256
    tensors, config = load_safetensors(SHIPPED)
    assert len(tensors) == 25 and all(
        t.dtype in (torch.float32, torch.int64) for t in tensors.values()
    )
    assert config["architecture"] == "fan_distilled"
    assert config["distillation"]["teacher"] == "landmarks"
    assert config["trained_at"] == [64, 128] and config["iteration"] > 0
    assert {"nme64", "nme128", "training_data"} <= set(config)


def test_default_source_loads_it():
    from progface import plugins

    source = plugins.get("heatmap_sources", "fan-distilled").build()
    assert source.num_landmarks == 68 and not source.training
    assert sum(p.numel() for p in source.parameters()) == 321_412
    with torch.no_grad():
        out = source(torch.rand(1, 3, 64, 64))
    assert out.shape == (1, 68, 64, 64) and torch.isfinite(out).all()


def test_model_card_states_the_facts():
    text = CARD.read_text()
    _, config = load_safetensors(SHIPPED)
    for fact in ("landmarks", "helen_test", f"{config['iteration']:,}", "NME"):
        assert fact in text, fact


def test_landmarks_on_human_labels(pfsr_checkpoint, tmp_path):
    """On val/helen_test: better than the mean training face (6.28 % of the image side) at
    64 px, and better than the authors' checkpoint at 128 px (SR step 3)."""
    from progface.landmarks.data import load_landmark_faces
    from progface.landmarks.evaluate import landmark_errors
    from progface.weights.landmarks import import_fan_distilled

    helen = Path(pfsr_checkpoint).parents[2] / "data/faces/val/helen_test"
    faces = load_landmark_faces([helen], limit=60)
    ours = landmark_errors(load_fan_distilled(), faces.float_images(), faces.points)
    authors = load_fan_distilled(import_fan_distilled(pfsr_checkpoint, tmp_path / "a.safetensors"))
    theirs = landmark_errors(authors, faces.float_images(), faces.points, sizes=(128,))
    assert 100 * ours[64]["size"].mean() < 5.5
    assert ours[128]["size"].mean() < theirs[128]["size"].mean()
