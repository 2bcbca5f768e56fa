"""Distillation: the recipe's step, resumable runs, the hint option, the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from progface.landmarks.data import load_landmark_faces
from progface.landmarks.sources import LandmarkHeatmaps
from progface.train.distill import DistillOptions, DistillRecipe
from progface.train.distill_run import run_distillation
from progface.weights import load_safetensors

SMALL = dict(sizes=(32, 64), size_probs=(0.5, 0.5), batch_size=4)


def test_train_step_regresses_the_teachers_heatmaps(face_folder):
    faces = load_landmark_faces([face_folder])
    torch.manual_seed(0)
    recipe = DistillRecipe(DistillOptions(iterations=30, lr=1e-3, **SMALL), LandmarkHeatmaps())
    batch = faces.batch([0, 1, 2, 3])
    first = recipe.train_step(batch, 0)
    assert set(first) == {"heatmap_mse", "size"} and first["size"] in (32.0, 64.0)
    # the loss is the plain MSE against the rendered Gaussians: zero output gives mean(t^2)
    losses = [recipe.train_step(batch, i)["heatmap_mse"] for i in range(1, 30)]
    assert losses[-1] < 0.5 * first["heatmap_mse"]
    scores = recipe.evaluate(faces.float_images(), faces.points, (32, 64))
    assert set(scores) == {"nme32", "nme_io32", "nme64", "nme_io64"}
    tensors, config = recipe.export()
    assert len(tensors) == 25 and config["architecture"] == "fan_distilled"


def test_same_iteration_same_augmentation_and_size(face_folder):
    faces = load_landmark_faces([face_folder])
    a = DistillRecipe(DistillOptions(**SMALL), LandmarkHeatmaps())
    b = DistillRecipe(DistillOptions(**SMALL), LandmarkHeatmaps())
    b.student.load_state_dict(a.student.state_dict())
    batch = faces.batch([0, 1, 2, 3])
    assert a.train_step(batch, 7) == b.train_step(batch, 7)


class FeatureTeacher(nn.Module):
    """A teacher with features(): the heatmaps of a fixed random distilled FAN."""

    num_landmarks = 68

    def __init__(self):
        super().__init__()
        from progface.landmarks.fan_distilled import FanDistilled

        self.net = FanDistilled().eval()

    def features(self, x):
        return self.net.forward_features(x)[:, :16]

    def forward(self, x):
        return self.net(x)


def test_hint_option_trains_a_regressor(face_folder):
    faces = load_landmark_faces([face_folder])
    recipe = DistillRecipe(DistillOptions(hint_weight=0.5, **SMALL), FeatureTeacher())
    assert set(recipe.models()) == {"student", "hint"}
    assert recipe.hint.out_channels == 16
    before = recipe.hint.weight.detach().clone()
    terms = recipe.train_step(faces.batch([0, 1]), 0)
    assert {"heatmap_mse", "hint_mse"} <= set(terms)
    assert not torch.equal(before, recipe.hint.weight)
    with pytest.raises(ValueError, match="features"):
        DistillRecipe(DistillOptions(hint_weight=1.0), LandmarkHeatmaps())


def test_run_resumes_exactly(face_folder, tmp_path):
    faces = load_landmark_faces([face_folder])

    def run(out, iterations, resume=False):
        torch.manual_seed(0)
        recipe = DistillRecipe(DistillOptions(iterations=iterations, **SMALL), LandmarkHeatmaps())
        run_distillation(recipe, faces, faces, out, val_every=2, checkpoint_every=2,
                         log_every=1, resume=resume, progress=False)  # fmt: skip
        return recipe.student.state_dict()

    straight = run(tmp_path / "a", 4)
    run(tmp_path / "b", 2)
    resumed = run(tmp_path / "b", 4, resume=True)
    for k, v in straight.items():
        assert torch.equal(v, resumed[k]), k
    records = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records if r["kind"] == "val"] == [2, 4]
    tensors, config = load_safetensors(tmp_path / "b" / "best.safetensors")
    assert "nme32" in config and config["iteration"] in (2, 4)
    with pytest.raises(FileExistsError, match="resume"):
        run(tmp_path / "a", 4)


def test_distill_command(face_folder, tmp_path):
    from progface.cli import cli

    out = tmp_path / "run"
    result = CliRunner().invoke(cli, [
        "distill", "--train", str(face_folder), "--val", str(face_folder), "--out", str(out),
        "--iterations", "2", "--batch-size", "2", "--sizes", "32", "--size-probs", "1",
        "--val-every", "2", "--checkpoint-every", "1", "--device", "cpu",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (out / "best.safetensors").is_file() and (out / "last.safetensors").is_file()
    assert len(list((out / "checkpoints").glob("ckpt_*.safetensors"))) == 2
    bad = CliRunner().invoke(cli, ["distill", "--train", str(face_folder), "--out", str(out),
                                   "--sizes", "32,64", "--size-probs", "1"])  # fmt: skip
    assert bad.exit_code != 0 and "same number" in bad.output
