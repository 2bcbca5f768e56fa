"""bench with the trained comparison methods: skipping, weights, Table 3 / Table 2 layouts."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from progface.builtin.baselines import SHIPPED_SHA256
from progface.cli import cli
from progface.jobs.bench import BenchResult, run_bench
from progface.jobs.bench_ablation import ablation_rows, read_run
from progface.jobs.bench_tables import PAPER_TABLE3, table2_markdown, table3_markdown
from progface.models.urdgn import URDGNGenerator
from progface.models.vdsr import VDSR
from progface.weights.generators import save_weights

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROGFACE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PROGFACE_OFFLINE", "1")


def _weights(tmp_path, net, method, name):
    torch.manual_seed(0)
    return save_weights(net.eval(), tmp_path / name, {**net.config_dict(), "method": method})


def _run_folder(tmp_path, name, recipe, preset, net, method):
    run = tmp_path / "runs" / name
    run.mkdir(parents=True)
    (run / "config.toml").write_text(f'recipe = "{recipe}"\npreset = "{preset}"\n')
    save_weights(net.eval(), run / "weights.safetensors", {**net.config_dict(), "method": method})
    return run


def test_missing_weights_are_reported_and_skipped_never_replaced(hr_folder, tmp_path):
    out = tmp_path / "b"
    missing = sorted({"fsrnet", "fsrgan", "urdgn", "vdsr"} - set(SHIPPED_SHA256))
    result = CliRunner().invoke(
        cli, ["bench", "--methods", ",".join(["bicubic", *missing]), "--data", str(hr_folder),
              "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for m in missing:
        assert (
            f"| {m} | not run: weight file {m}_celeba.safetensors is not available" in result.output
        )
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["methods"]) == ["bicubic"]
    assert set(summary["not_run"]) == set(missing)
    # the figure has HR, LR and the one method that ran
    assert Image.open(out / "comparison.png").size[0] == 3 * 128 + 2 * 2


def test_trained_methods_run_with_their_weights(hr_folder, tmp_path):
    vdsr = _weights(tmp_path, VDSR(), "vdsr", "v.safetensors")
    urdgn = _weights(tmp_path, URDGNGenerator(), "urdgn", "u.safetensors")
    out = tmp_path / "b"
    result = CliRunner().invoke(
        cli, ["bench", "--methods", "bilinear,bicubic,vdsr,urdgn", "--data", str(hr_folder),
              "--weights", f"vdsr={vdsr}", "--weights", f"urdgn={urdgn}", "--out", str(out),
              "--limit", "2", "--table3", "aligned"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["methods"]) == ["bilinear", "bicubic", "vdsr", "urdgn"]
    assert summary["methods"]["vdsr"]["weights"]["path"] == str(vdsr)
    lines = result.stdout.splitlines()  # skipped files go to stderr
    assert lines[0].startswith("Table 3 layout | protocol: standard")
    body = [ln.split(" | ")[0].lstrip("| ") for ln in lines if ln.startswith("| ")][1:]
    # the paper's row order; FSRGAN, FSRNet and Ours were not run: reference rows only
    assert body == ["Bilinear", "Bicubic", "URDGN [24]", "FSRGAN [5]", "FSRNet [5]",
                    "VDSR [8]", "Ours"]  # fmt: skip
    vdsr_line = next(ln for ln in lines if ln.startswith("| VDSR [8] |"))
    assert vdsr_line.endswith("| 22.94 | 0.652 | 0.880 |")
    assert f"{summary['methods']['vdsr']['psnr']:.2f}" in vdsr_line
    assert Image.open(out / "comparison.png").size[0] == 6 * 128 + 5 * 2


def test_wrong_weights_for_a_method_are_reported(hr_folder, tmp_path):
    urdgn = _weights(tmp_path, URDGNGenerator(), "urdgn", "u.safetensors")
    result = run_bench(["vdsr"], hr_folder, weights={"vdsr": str(urdgn)}, progress=False)
    assert result.summary == {}
    assert "holds urdgn weights, not vdsr" in result.not_run["vdsr"]


def test_table3_markdown_order_names_and_reference():
    r = BenchResult("pfsr", "data", 3)
    r.summary = {
        "vdsr": {"psnr": 23.0, "ssim": 0.6, "ms-ssim": 0.8, "images": 3, "seconds": 1.0},
        "mine": {"psnr": 20.0, "ssim": 0.5, "ms-ssim": 0.7, "images": 3, "seconds": 1.0},
        "bilinear": {"psnr": 21.0, "ssim": 0.55, "ms-ssim": 0.75, "images": 3, "seconds": 1.0},
    }
    r.not_run = {"urdgn": "no weights"}
    text = table3_markdown(r, "unaligned")
    rows = [ln for ln in text.splitlines() if ln.startswith("| ")]
    assert rows[0] == ("| Method | PSNR (dB) | SSIM | MS-SSIM | paper unaligned PSNR | "
                       "paper SSIM | paper MS-SSIM |")  # fmt: skip
    assert rows[1] == "| Bilinear | 21.00 | 0.5500 | 0.7500 | 21.86 | 0.624 | 0.795 |"
    assert rows[2].startswith("| FSRGAN [5] | - | - | - | 20.95")  # reference only
    assert rows[3].startswith("| FSRNet [5] | - | - | - | 21.19")
    assert rows[4] == "| VDSR [8] | 23.00 | 0.6000 | 0.8000 | 23.70 | 0.682 | 0.882 |"
    assert rows[5].startswith("| Ours | - |")
    assert rows[6] == "| mine | 20.00 | 0.5000 | 0.7000 | - | - | - |"
    assert rows[7] == "| urdgn | not run: no weights |" and len(rows) == 8
    plain = table3_markdown(r, None)  # no reference: only what ran, and what did not
    assert "paper" not in plain and len([ln for ln in plain.splitlines() if ln[:2] == "| "]) == 5
    assert PAPER_TABLE3["aligned"]["ours"] == (22.66, 0.685, 0.902)


def test_table3_markdown_extra_metric_column():
    r = BenchResult("standard", "data", 1)
    r.summary = {"bicubic": {"psnr": 21.0, "ssim": 0.5, "ms-ssim": 0.7, "landmark-nme": 2.345,
                             "my-metric": 0.12345, "images": 1, "seconds": 1.0}}  # fmt: skip
    text = table3_markdown(r, None)
    rows = [ln for ln in text.splitlines() if ln.startswith("| ")]
    assert rows[0].startswith("| Method | PSNR (dB) | SSIM | MS-SSIM | landmark-nme")
    assert rows[0].endswith("| my-metric |")
    assert rows[1].endswith("| 0.1235 |") and "| 0.7000 |" in rows[1]


def test_table2_markdown_from_presets():
    r = BenchResult("standard", "data", 2)
    row = {"psnr": 20.0, "ssim": 0.5, "ms-ssim": 0.7, "images": 2, "seconds": 1.0}
    r.summary = {"full": row, "pw": row, "bicubic": row}
    text = table2_markdown(r, {"full": "table2-full", "pw": "table2-pixel-wgan"})
    rows = [ln for ln in text.splitlines() if ln.startswith("| ")][1:]
    assert rows[0].startswith("| L_pixel + L_WGAN (pw) | 20.00 |")
    assert rows[0].endswith("| 21.62 | 0.616 | 0.873 |")
    assert rows[1].startswith("| L_Ours (full) |") and rows[1].endswith("| 22.66 | 0.685 | 0.902 |")
    assert len(rows) == 2  # bicubic is not an ablation row


def test_read_run_and_ablation_rows(tmp_path):
    a = _run_folder(tmp_path, "v1", "vdsr", "small", VDSR(), "vdsr")
    b = _run_folder(tmp_path, "p", "progressive", "default", VDSR(), "")  # facts without method
    run = read_run(a)
    assert (run.label, run.method, run.recipe, run.preset) == ("v1", "vdsr", "vdsr", "small")
    assert read_run(b).method == "ours" and read_run(b).preset == "table2-full"
    rows, presets = ablation_rows([a, b])
    assert rows == [
        ("v1", "vdsr", a / "weights.safetensors"),
        ("p", "ours", b / "weights.safetensors"),
    ]
    assert presets == {"v1": "small", "p": "table2-full"}
    with pytest.raises(ValueError, match="no config.toml"):
        read_run(tmp_path)
    (a / "weights.safetensors").unlink()
    with pytest.raises(ValueError, match="no weights.safetensors"):
        read_run(a)


def test_cli_ablation_benches_run_folders(hr_folder, tmp_path):
    run = _run_folder(tmp_path, "vdsr-small", "vdsr", "small", VDSR(), "vdsr")
    out = tmp_path / "b"
    result = CliRunner().invoke(
        cli, ["bench", "--methods", "bicubic", "--ablation", str(run), "--data", str(hr_folder),
              "--out", str(out), "--limit", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "| vdsr-small |" in result.output and "Table 2 layout (ablation)" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["methods"]["vdsr-small"]["method"] == "vdsr"
    assert (
        CliRunner().invoke(cli, ["bench", "--data", str(hr_folder), "--methods", ""]).exit_code == 2
    )
    with pytest.raises(ValueError, match="share a name"):
        run_bench(["vdsr"], hr_folder, extra_rows=[("vdsr", "vdsr", run / "weights.safetensors")])


def test_right_keys_wrong_shapes_are_reported_and_the_rest_runs(hr_folder, tmp_path):
    from progface.weights import load_safetensors, save_safetensors

    good = _weights(tmp_path, VDSR(), "vdsr", "v.safetensors")
    tensors, config = load_safetensors(good)
    key = next(k for k, v in tensors.items() if v.ndim == 4)
    tensors[key] = torch.zeros(*tensors[key].shape[:-1], tensors[key].shape[-1] + 2)
    bad = save_safetensors(tensors, tmp_path / "bad.safetensors", config)
    result = run_bench(["vdsr", "bicubic"], hr_folder, weights={"vdsr": str(bad)}, progress=False)
    assert list(result.summary) == ["bicubic"]
    assert f"1 wrong shapes ({key} " in result.not_run["vdsr"]
    assert "(method 'vdsr' of plugin 'progface.builtin.baselines')" in result.not_run["vdsr"]


def test_bench_defaults_to_ours_and_bicubic(hr_folder, tmp_path):
    """With no --methods, the shipped default method is compared with bicubic."""
    out = tmp_path / "d"
    result = CliRunner().invoke(cli, ["bench", "--data", str(hr_folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["methods"]) == ["ours", "bicubic"]
    assert summary["methods"]["ours"]["weights"]["path"].endswith("pfsr_generator_psnr.safetensors")
