"""Distillation on the shared loop: the recipe's step, resumable runs, the hint, the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from progface.landmarks.data import load_landmark_faces
from progface.train.config import load_config
from progface.train.context import Context
from progface.train.loop import train
from progface.train.recipes.distill import heatmap_mse
from progface.weights import load_safetensors

SMALL = ["options.sizes=[32, 64]", "options.size_probs=[0.5, 0.5]", "loop.batch_size=4"]


def config(tmp_path, folder, *sets):
    return load_config(None, [f'out="{tmp_path / "run"}"', f'data.train="{folder}"',
                              f'data.val="{folder}"', *SMALL, *sets], recipe="distill")  # fmt: skip


def recipe_for(cfg, **objects):
    from progface.train.recipes.distill import build

    torch.manual_seed(0)
    return build(cfg, Context(torch.device("cpu")), **objects)


def test_train_step_regresses_the_teachers_heatmaps(face_folder, tmp_path):
    cfg = config(tmp_path, face_folder, "options.lr=1e-3", "options.sizes=[32]",
                 "options.size_probs=[1.0]")  # fmt: skip
    assert cfg.data.workers == 0 and cfg.loop.val_every == 500  # the recipe's default preset
    recipe = recipe_for(cfg)
    batch = load_landmark_faces([face_folder]).batch([0, 1, 2, 3])
    first = recipe.train_step(batch, 0)
    assert set(first) == {"heatmap_mse"} and recipe.state()["size"] == 32
    losses = [recipe.train_step(batch, i)["heatmap_mse"] for i in range(1, 25)]
    assert losses[-1] < 0.5 * first["heatmap_mse"]
    tensors, facts = recipe.export()
    assert len(tensors) == 25 and facts["architecture"] == "fan_distilled"


def test_weighted_warm_up_by_hand():
    target = torch.zeros(1, 1, 5, 5)
    target[0, 0, 2, 2] = 1.0
    pred = torch.full((1, 1, 5, 5), 0.5)
    # 9 pixels near the peak weigh 1 + 4 = 5: (0.25 * 5 * 8 + 0.25 * 5 + 0.25 * 16) / 25
    assert heatmap_mse(pred, target, 4.0).item() == pytest.approx((0.25 * 45 + 0.25 * 16) / 25)
    assert heatmap_mse(pred, target).item() == pytest.approx(0.25)


def test_same_iteration_same_augmentation_and_size(face_folder, tmp_path):
    cfg = config(tmp_path, face_folder)
    a, b = recipe_for(cfg), recipe_for(cfg)
    batch = load_landmark_faces([face_folder]).batch([0, 1, 2, 3])
    assert a.train_step(batch, 7) == b.train_step(batch, 7)


class FeatureTeacher(nn.Module):
    """A teacher with features(): a fixed random distilled FAN."""

    num_landmarks = 68

    def __init__(self):
        super().__init__()
        from progface.landmarks.fan_distilled import FanDistilled

        self.net = FanDistilled().eval()

    def features(self, x):
        return self.net.forward_features(x)[:, :16]

    def forward(self, x):
        return self.net(x)


def test_hint_option_trains_a_regressor(face_folder, tmp_path):
    cfg = config(tmp_path, face_folder, "options.hint_weight=0.5")
    recipe = recipe_for(cfg, teacher=FeatureTeacher())
    assert set(recipe.models()) == {"student", "hint"} and recipe.hint.out_channels == 16
    before = recipe.hint.weight.detach().clone()
    terms = recipe.train_step(load_landmark_faces([face_folder]).batch([0, 1]), 0)
    assert set(terms) == {"heatmap_mse", "hint_mse"}
    assert not torch.equal(before, recipe.hint.weight)
    with pytest.raises(ValueError, match="features"):
        recipe_for(config(tmp_path, face_folder, "options.hint_weight=1.0"))


def test_loop_run_resumes_exactly(face_folder, tmp_path):
    common = ["loop.val_every=2", "loop.checkpoint_every=2", "loop.log_every=1",
              "loop.keep_checkpoints=0", "loop.progress=false"]  # fmt: skip

    def run(name, iterations, resume=False):
        cfg = load_config(None, [f'out="{tmp_path / name}"', f'data.train="{face_folder}"',
                                 f'data.val="{face_folder}"', f"options.iterations={iterations}",
                                 *SMALL, *common], recipe="distill")  # fmt: skip
        train(cfg, resume=resume)
        return load_safetensors(tmp_path / name / "weights.safetensors")[0]

    straight = run("a", 4)
    run("b", 2)
    resumed = run("b", 4, resume=True)
    for k, v in straight.items():
        assert torch.equal(v, resumed[k]), k
    records = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    vals = [r for r in records if r["kind"] == "val"]
    assert [r["iteration"] for r in vals] == [2, 4] and "nme_io64" in vals[0]
    _, facts = load_safetensors(tmp_path / "b" / "best.safetensors")
    assert facts["selected_on"] == "nme_mean" and facts["iteration"] in (2, 4)
    assert (tmp_path / "b" / "samples" / "iter_00000004.png").is_file()


def test_distill_command(face_folder, tmp_path):
    from progface.cli import cli

    out = tmp_path / "run"
    args = ["distill", "--train", str(face_folder), "--val", str(face_folder), "--out", str(out),
            "--iterations", "2", "--batch-size", "2", "--sizes", "32", "--size-probs", "1",
            "--val-every", "2", "--checkpoint-every", "1", "--device", "cpu",
            "--report", str(face_folder), "--set", "loop.progress=false"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (out / "best.safetensors").is_file() and (out / "weights.safetensors").is_file()
    val = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()][-1]
    assert val["kind"] == "val" and "faces/nme32" in val  # the --report folder, by its name
    more = CliRunner().invoke(cli, ["distill", "--out", str(out), "--iterations", "3", "--resume"])
    assert more.exit_code == 0, more.output
    bad = CliRunner().invoke(cli, ["distill", "--train", str(face_folder), "--out", str(tmp_path / "x"),
                                   "--sizes", "32,64", "--size-probs", "1"])  # fmt: skip
    assert bad.exit_code != 0 and "same" in bad.output


def test_init_student_warm_starts_from_a_weight_file(face_folder, tmp_path):
    from progface.landmarks.fan_distilled import FanDistilled
    from progface.weights import save_safetensors
    from progface.weights.landmarks import FAN_DISTILLED_CONFIG

    torch.manual_seed(5)
    start = FanDistilled()
    path = save_safetensors(start.state_dict(), tmp_path / "start.safetensors",
                            dict(FAN_DISTILLED_CONFIG))  # fmt: skip
    recipe = recipe_for(config(tmp_path, face_folder, f'options.init_student="{path}"'))
    for key, value in start.state_dict().items():
        assert torch.equal(recipe.student.state_dict()[key], value), key
    fresh = recipe_for(config(tmp_path, face_folder))
    assert not torch.equal(fresh.student.conv.weight, start.conv.weight)


def test_a_paused_distillation_resumes_to_its_end_like_train(face_folder, tmp_path):
    """``loop.stop_at`` pauses a run, and ``--resume --out RUN`` goes on from the checkpoint to
    the recipe's total, under ``progface distill`` exactly as under ``progface train``: the run's
    config.toml records the pause point, which must not end the continuation at once. Either
    way the weights equal those of a straight run; ``--iterations`` extends a finished run."""
    from progface.cli import cli
    from progface.train.checkpoint import read_checkpoint

    common = ["--set", "options.iterations=10", "--set", "loop.batch_size=2",
              "--set", "options.sizes=[32]", "--set", "options.size_probs=[1.0]",
              "--set", "loop.checkpoint_every=4", "--set", "loop.log_every=1",
              "--set", 'loop.device="cpu"', "--set", "loop.progress=false"]  # fmt: skip
    commands = {
        "distill": lambda out: ["distill", "--train", str(face_folder), "--out", str(out)],
        "train": lambda out: ["train", "--recipe", "distill", "--data", str(face_folder),
                              "--out", str(out)],
    }  # fmt: skip

    def invoke(*args):
        result = CliRunner().invoke(cli, [str(a) for a in args])
        assert result.exit_code == 0, result.output

    def iterations(run):
        records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return [r["iteration"] for r in records if r["kind"] == "train"]

    invoke(*commands["distill"](tmp_path / "straight"), *common)
    straight = load_safetensors(tmp_path / "straight" / "weights.safetensors")[0]
    for name, command in commands.items():
        run = tmp_path / name
        invoke(*command(run), *common, "--set", "loop.stop_at=6")
        assert iterations(run) == [1, 2, 3, 4, 5, 6]
        invoke(name, "--resume", "--out", run)  # the run's own config, to its end
        assert iterations(run) == list(range(1, 11)), name  # continued, not restarted
        _, meta = read_checkpoint(run / "checkpoints" / "ckpt_00000010.safetensors")
        assert meta["iteration"] == 10 and meta["config"]["loop"]["stop_at"] == 0
        resumed = load_safetensors(run / "weights.safetensors")[0]
        assert all(torch.equal(straight[k], resumed[k]) for k in straight), name
    invoke("distill", "--resume", "--out", tmp_path / "distill", "--iterations", "12")
    assert iterations(tmp_path / "distill") == list(range(1, 13))
