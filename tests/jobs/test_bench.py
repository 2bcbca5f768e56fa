from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from progface.cli import cli
from progface.jobs.bench import run_bench


def _pil_psnr(path, mode):
    img = Image.open(path).convert("RGB")
    lr = img
    for size in (64, 32, 16):
        lr = lr.resize((size, size), Image.BILINEAR)
    sr = np.asarray(lr.resize((128, 128), mode)).astype(np.float64) / 255
    mse = ((sr - np.asarray(img).astype(np.float64) / 255) ** 2).mean()
    return 10 * math.log10(1 / mse)


def test_bench_outputs_and_pil_parity(hr_folder, tmp_path):
    out = tmp_path / "bench"
    result = CliRunner().invoke(
        cli, ["bench", "--methods", "bilinear,bicubic", "--data", str(hr_folder), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "| bilinear |" in result.output and "| bicubic |" in result.output
    assert "Protocol: standard" in result.output and "images: 5" in result.output
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 5 * 2 * 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 5 and summary["protocol"] == "standard"
    assert summary["skipped"][0]["file"].endswith("broken.png")
    for method, mode in (("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC)):
        ref = np.mean([_pil_psnr(hr_folder / f"f{i}.png", mode) for i in range(5)])
        assert summary["methods"][method]["psnr"] == pytest.approx(ref, abs=0.05)
        per_image = [
            float(r["value"]) for r in rows if r["method"] == method and r["metric"] == "psnr"
        ]
        assert np.mean(per_image) == pytest.approx(summary["methods"][method]["psnr"])
    fig = Image.open(out / "comparison.png")
    assert fig.size == (4 * 128 + 3 * 2, 14 + 5 * 128 + 4 * 2)


def test_pfsr_and_standard_psnr_by_hand(register_plugin, tmp_path):
    """Both protocols' PSNR on faces whose every pixel error is known. The method returns
    mid-grey (0.5) faces and the HR faces are flat grey: value 153 (0.6) is 0.1 off (MSE 0.01,
    20 dB), 255 is 0.5 off (MSE 0.25, 10 log10 4 = 6.02 dB), 128 is 1/510 off (20 log10 510 =
    54.15 dB). 17 faces in name order: 15 x 153 and one 255 (pfsr's first batch of 16), then
    one 128 (its second batch, alone).

    standard: the mean of the 17 per-image PSNRs, (15 x 20 + 6.02 + 54.15) / 17 = 21.19 dB.
    pfsr: per batch 10 log10(1 / MSE of the batch), batches weighted equally: the first batch's
    MSE is (15 x 0.01 + 0.25) / 16 = 0.025 (16.02 dB, below its faces' mean PSNR), the second
    is 54.15 dB, so (16.02 + 54.15) / 2 = 35.09 dB: 13.90 dB above standard, because the lone
    face of the last batch weighs 1/2 instead of 1/17."""
    from progface import hookimpl
    from progface.registry import MethodSpec

    def load(weights=None, device="cpu"):
        return lambda lr: torch.full((lr.shape[0], 3, 128, 128), 0.5)

    class Grey:
        @hookimpl
        def register_methods(self, register):
            register(MethodSpec("grey", load=load))

    register_plugin(Grey(), "grey-plugin")
    folder = tmp_path / "flat"
    folder.mkdir()
    for i, value in enumerate([153] * 15 + [255, 128]):
        Image.new("RGB", (128, 128), (value,) * 3).save(folder / f"f{i:02d}.png")
    std = run_bench(["grey"], folder, protocol="standard", metrics=("psnr",), progress=False)
    pfsr = run_bench(["grey"], folder, protocol="pfsr", metrics=("psnr",), progress=False)
    good, bad = 20 * math.log10(510), 10 * math.log10(4)
    assert std.summary["grey"]["psnr"] == pytest.approx((15 * 20 + bad + good) / 17, abs=1e-4)
    assert pfsr.summary["grey"]["psnr"] == pytest.approx((10 * math.log10(40) + good) / 2, abs=1e-4)
    assert pfsr.summary["grey"]["psnr"] - std.summary["grey"]["psnr"] == pytest.approx(
        13.8994, abs=1e-3
    )
    assert "pfsr protocol" in pfsr.markdown() and "pfsr protocol" not in std.markdown()


def test_limit_and_batch_size_do_not_change_standard_results(hr_folder):
    a = run_bench(["bicubic"], hr_folder, batch_size=1, limit=3, progress=False)
    b = run_bench(["bicubic"], hr_folder, batch_size=16, limit=3, progress=False)
    assert a.images == 3
    assert a.summary["bicubic"]["psnr"] == pytest.approx(b.summary["bicubic"]["psnr"], abs=1e-9)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--methods", "bilinaer"], "unknown method 'bilinaer'; did you mean 'bilinear'"),
        (
            ["--methods", "bilinear", "--metrics", "psrn"],
            "unknown metric 'psrn'; did you mean 'psnr'",
        ),
        (["--methods", "bilinear", "--weights", "vdsr=x.safetensors"], "not in --methods"),
    ],
)
def test_bad_names_are_one_line_errors(hr_folder, tmp_path, args, message):
    result = CliRunner().invoke(
        cli, ["bench", "--data", str(hr_folder), "--out", str(tmp_path / "o"), *args]
    )
    assert result.exit_code == 1
    assert message in result.output


def test_16px_faces_are_refused_by_bench(tmp_path):
    src = tmp_path / "lr"
    src.mkdir()
    Image.new("RGB", (16, 16)).save(src / "x.png")
    out = tmp_path / "b"
    args = ["bench", "--methods", "bicubic", "--data", str(src), "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "no readable face images" in result.output


def test_one_failing_method_does_not_abort_the_bench(register_plugin, hr_folder, tmp_path):
    from progface import hookimpl
    from progface.registry import MethodSpec

    def load(weights=None, device="cpu"):
        def forward(lr):
            raise RuntimeError("kaboom\nsecond line")

        return forward

    class Raising:
        @hookimpl
        def register_methods(self, register):
            register(MethodSpec("raises", load=load))

    register_plugin(Raising(), "raising-plugin")
    out = tmp_path / "b"
    result = CliRunner().invoke(
        cli, ["bench", "--methods", "raises,bicubic", "--data", str(hr_folder), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    why = "RuntimeError: kaboom second line (method 'raises' of plugin 'raising-plugin')"
    assert f"progface bench: 'raises' skipped: {why}" in result.output
    assert f"| raises | not run: {why} |" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["methods"]) == ["bicubic"] and summary["not_run"]["raises"] == why


def test_weights_for_a_method_that_takes_none_are_refused(hr_folder, tmp_path):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"x")
    out = tmp_path / "b"
    args = ["bench", "--methods", "bicubic", "--data", str(hr_folder), "--out", str(out),
            "--weights", f"bicubic={weights}"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: --weights bicubic={weights}: method 'bicubic' takes no weights "
        f"(given {weights}); leave it out"
    )
    assert not (out / "summary.json").exists()
    result = CliRunner().invoke(
        cli,
        [
            "upscale",
            str(hr_folder),
            "-o",
            str(tmp_path / "u"),
            "--method",
            "bicubic",
            "--weights",
            str(weights),
        ],
    )
    assert result.exit_code == 1 and "--weights: method 'bicubic' takes no weights" in result.output


def test_skipped_files_are_reported(hr_folder, tmp_path):
    Image.new("RGB", (160, 128)).save(hr_folder / "wide.png")
    result = CliRunner().invoke(cli, ["bench", "--methods", "bicubic", "--data", str(hr_folder),
                                      "--out", str(tmp_path / "b")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"skipped {hr_folder / 'broken.png'}: not a readable image" in result.output
    assert f"skipped {hr_folder / 'wide.png'}: not square (160x128)" in result.output


def test_when_every_file_is_skipped_the_reasons_are_shown(tmp_path):
    src = tmp_path / "wide"
    src.mkdir()
    for i in range(5):
        Image.new("RGB", (160, 128)).save(src / f"w{i}.png")
    out = tmp_path / "b"
    args = ["bench", "--methods", "bicubic", "--data", str(src), "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    line = result.output.strip()
    assert line.startswith(f"Error: {src}: no readable face images (5 skipped: w0.png: not square")
    assert "use --crop" in line and line.endswith("; 2 more)") and "\n" not in line
    assert not out.exists()
