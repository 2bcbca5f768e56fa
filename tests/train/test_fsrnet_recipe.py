"""The FSRNet and FSRGAN recipes on the generic loop (tiny synthetic faces)."""

from __future__ import annotations

import pytest
import torch

from progface.jobs.runtime import load_method
from progface.train.checkpoint import latest_checkpoint
from progface.train.loop import train
from progface.weights import load_safetensors
from tests.train.baseline_helpers import CornerHeatmaps, SmoothFaces, cfg, run_log

torch.set_num_threads(1)  # small tensors on a shared CPU


def test_fsrnet_recipe_with_a_custom_heatmap_source(tmp_path):
    run = train(cfg("fsrnet", tmp_path / "f", "options.iterations=2", "loop.batch_size=1",
                     "loop.grid_faces=1"),
                train_data=SmoothFaces(2), heatmap_source=CornerHeatmaps())  # fmt: skip
    terms = [r for r in run_log(run) if r["kind"] == "train"]
    assert set(terms[0]) >= {"coarse", "sr", "prior"} and "adversarial" not in terms[0]
    tensors, facts = load_safetensors(run / "weights.safetensors")
    assert tensors["heatmap_head.weight"].shape == (3, 128, 1, 1)
    assert facts["method"] == "fsrnet" and facts["heatmap_source"] == "CornerHeatmaps"
    model, _ = load_method("fsrnet", "cpu", run / "weights.safetensors")
    assert model(SmoothFaces().lr[:2]).shape == (2, 3, 128, 128)
    with pytest.raises(Exception, match="fsrnet"):
        load_method("fsrgan", "cpu", run / "weights.safetensors")


def test_fsrgan_recipe_adds_discriminator_and_perceptual_terms(tmp_path):
    run = train(
        cfg("fsrgan", tmp_path / "g", "options.iterations=1", 'options.perceptual_weights="random"',
             "loop.batch_size=1", "loop.grid_faces=1"),
        train_data=SmoothFaces(1), heatmap_source=CornerHeatmaps(),
    )  # fmt: skip
    terms = [r for r in run_log(run) if r["kind"] == "train"][0]
    assert set(terms) >= {"coarse", "sr", "prior", "perceptual", "adversarial", "d_real", "d_fake"}
    _, meta = load_safetensors(latest_checkpoint(run / "checkpoints"))
    assert set(meta["optimizers"]) == {"generator", "discriminator"}
    assert load_safetensors(run / "weights.safetensors")[1]["method"] == "fsrgan"


def test_prior_targets_resize_and_pass_names():
    from progface.train.recipes.fsrnet import prior_targets

    maps = prior_targets(CornerHeatmaps(), torch.rand(2, 3, 128, 128), 64)
    assert maps.shape == (2, 3, 64, 64)
    seen = {}

    class Named:
        num_landmarks = 1

        def __call__(self, images, names=None):
            seen["names"] = names
            return torch.zeros(len(images), 1, *images.shape[-2:])

    assert prior_targets(Named(), torch.rand(2, 3, 64, 64), 64, ["a", "b"]).shape == (2, 1, 64, 64)
    assert seen["names"] == ["a", "b"]


def test_default_landmarks_source_renders_the_folder_csv(faces_dir, tmp_path):
    from progface.data.datasets import FaceFolder
    from progface.data.landmarks_io import read_landmarks_csv
    from progface.train.recipes.fsrnet import FSRNetOptions, build_heatmap_source, prior_targets

    folder = faces_dir / "train" / "celeba"
    face = FaceFolder(folder, limit=1)[0]
    source = build_heatmap_source(FSRNetOptions(), str(folder), torch.device("cpu"))
    maps = prior_targets(source, face["hr"][None], 64, [face["name"]])
    assert maps.shape == (1, 68, 64, 64)
    points = torch.from_numpy(read_landmarks_csv(folder / "landmarks68.csv")[face["name"]].points)
    for k in (30, 36, 48):  # nose tip, an eye corner, a mouth corner: peaks at the 64-px points
        peak = int(maps[0, k].argmax())
        found = torch.tensor([peak % 64, peak // 64], dtype=torch.float32)
        assert (found - points[k].float() / 2).abs().max() <= 1.0, k

    run = train(cfg("fsrnet", tmp_path / "l", "options.iterations=1", "loop.batch_size=1",
                    "loop.grid_faces=1", f'data.train="{folder}"', "data.limit=2"))  # fmt: skip
    tensors, facts = load_safetensors(run / "weights.safetensors")
    assert facts["heatmap_source"] == "landmarks"
    assert tensors["heatmap_head.weight"].shape == (68, 128, 1, 1)
