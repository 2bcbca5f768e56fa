"""``progface train``: TOML file, --set, --resume from the run folder, clear errors."""

from __future__ import annotations

import json

from click.testing import CliRunner

from progface.cli import cli
from tests.helpers import smooth_faces


def _faces(folder, n=3):
    return smooth_faces(folder, n, grid=4)


def test_train_from_toml_then_resume(tmp_path):
    faces = _faces(tmp_path / "faces")
    run = tmp_path / "run"
    config = tmp_path / "tiny.toml"
    config.write_text(f"""
preset = "table2-pixel-wgan"
out = "{run}"
[data]
train = "{faces}"
val = "{faces}"
workers = 0
[loop]
batch_size = 2
log_every = 1
progress = false
[options]
iterations = [2]
channels = [16, 8, 8, 8]
""")
    runner = CliRunner()
    first = runner.invoke(cli, ["train", str(config), "--set", "loop.stop_at=1"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(cli, ["train", str(config)])
    assert again.exit_code != 0 and "--resume" in again.output
    resumed = runner.invoke(cli, ["train", "--resume", "--out", str(run)])
    assert resumed.exit_code == 0, resumed.output
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records if r["kind"] == "train"] == [1, 2]
    val = [r for r in records if r["kind"] == "val"]
    assert [r["size"] for r in val] == [32, 32] and val[-1]["faces"] == 3
    assert {"psnr", "ssim", "bilinear_psnr", "bilinear_ssim"} <= set(val[-1])
    assert (run / "samples" / "iter_00000002.png").is_file()


def test_train_errors_name_the_key(tmp_path):
    result = CliRunner().invoke(cli, ["train", "--set", "options.iteratons=[1]"])
    assert result.exit_code != 0 and "did you mean 'options.iterations'" in result.output
    result = CliRunner().invoke(cli, ["train", "--preset", "nope"])
    assert result.exit_code != 0 and "no preset 'nope'" in result.output
    result = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "r")])
    assert result.exit_code != 0 and "data.train" in result.output


def test_a_failed_start_leaves_no_run_folder(tmp_path):
    run = tmp_path / "run"
    args = ["train", "--data", str(tmp_path / "missing"), "--out", str(run), "--recipe", "vdsr",
            "--set", "data.workers=0"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "missing: no such folder" in result.output
    assert not run.exists()


def test_resume_without_a_checkpoint_says_so(tmp_path):
    result = CliRunner().invoke(cli, ["train", "--resume"])
    assert result.exit_code == 2 and "--resume needs --out RUN" in result.output
    run = tmp_path / "run"
    args = ["train", "--resume", "--out", str(run), "--data", str(tmp_path / "missing")]
    result = CliRunner().invoke(cli, args)
    assert result.output.strip() == (
        f"Error: {run / 'checkpoints'}: --resume found no checkpoint to resume from"
    )
    assert not run.exists()
