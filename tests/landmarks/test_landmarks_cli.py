"""progface landmarks eval|show, progface weights import, and the plugin registrations."""

from __future__ import annotations

import csv
import json
import sys
import warnings

import pytest
import torch
from click.testing import CliRunner

from progface.cli import cli
from progface.landmarks.fan import FAN
from progface.landmarks.fan_distilled import FanDistilled
from progface.weights import save_safetensors


@pytest.fixture
def random_student(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "student.safetensors"
    save_safetensors(FanDistilled().state_dict(), path, {"architecture": "fan_distilled"})
    return path


def test_registered_sources_and_commands():
    from progface import plugins

    assert "progface.builtin.landmarks" in plugins.DEFAULT_PLUGINS
    regs = plugins.registries()
    sources = regs["heatmap_sources"]
    assert {"fan", "fan-distilled", "landmarks", "dlib68"} <= set(sources.names())
    assert sources.get("fan").count_parameters() == 23_820_176
    assert sources.get("fan4").name == "fan"
    assert sources.get("fan-distilled").count_parameters() == 321_412
    assert sources.get("fan-distilled").weights.shipped
    assert sources.get("fan").weights.url.startswith("https://www.adrianbulat.com/")
    assert sources.get("landmarks").build(points=torch.zeros(68, 2)).num_landmarks == 68
    assert regs["metrics"].get("landmark-nme").higher_is_better is False
    assert {"distill", "landmarks"} <= set(cli.commands)
    assert "import" in cli.commands["weights"].commands
    from progface.weights.importers import IMPORTERS

    assert {"fan-distilled", "fan"} <= set(IMPORTERS)


def test_eval_writes_per_image_csv_and_summary(face_folder, random_student, tmp_path):
    out = tmp_path / "eval"
    result = CliRunner().invoke(cli, [
        "landmarks", "eval", "--source", "fan-distilled", "--weights", str(random_student),
        "--data", str(face_folder), "--sizes", "32,64", "--out", str(out), "--device", "cpu",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "| fan-distilled | 32 |" in result.output and "| fan-distilled | 64 |" in result.output
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    assert len(rows) == 8 and {r["size"] for r in rows} == {"32", "64"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["faces"] == 4 and summary["label_sources"] == ["dlib_det", "gt_300w"]
    mean32 = sum(float(r["nme_size_pct"]) for r in rows if r["size"] == "32") / 4
    assert summary["nme_percent"]["32"]["size"] == pytest.approx(mean32, abs=1e-3)
    assert summary["weights"]["file"] == "student.safetensors"


def test_eval_of_the_labels_themselves_is_exact(face_folder, tmp_path, monkeypatch):
    """A source that renders the labels back: NME is the decoding error only (< 0.25 px/axis)."""
    from progface.landmarks.data import load_landmark_faces
    from progface.landmarks.evaluate import landmark_errors
    from progface.landmarks.sources import LandmarkHeatmaps

    faces = load_landmark_faces([face_folder])
    source = LandmarkHeatmaps(faces.points)
    errors = landmark_errors(source, faces.float_images(), faces.points, sizes=(128,))
    assert float(errors[128]["size"].max()) * 128 <= 0.3536 + 1e-4  # sqrt(2) / 4 px


def test_show_writes_the_figure(face_folder, random_student, tmp_path):
    out = tmp_path / "fig.png"
    result = CliRunner().invoke(cli, [
        "landmarks", "show", "--source", "fan-distilled", "--weights", str(random_student),
        "--data", str(face_folder), "--out", str(out), "--limit", "2", "--device", "cpu",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    from PIL import Image

    img = Image.open(out)
    assert img.size == (3 * 192 + 2 * 2, 14 + 2 * 192 + 2) and img.format == "PNG"
    small = tmp_path / "fig.jpg"
    args = ["landmarks", "show", "--source", "fan-distilled", "--weights", str(random_student),
            "--data", str(face_folder), "--out", str(small), "--limit", "1", "--tile", "64"]  # fmt: skip
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert Image.open(small).format == "JPEG" and Image.open(small).size == (3 * 64 + 4, 14 + 64)


def test_weights_import_command(tmp_path, monkeypatch):
    import types

    from torch import nn

    class fan_squeeze(nn.Module):  # noqa: N801
        def __init__(self):
            super().__init__()
            ref = FanDistilled()
            self.conv, self.layers = ref.conv, ref.layers

    fan_squeeze.__module__, fan_squeeze.__qualname__ = "fan_model", "fan_squeeze"
    module = types.ModuleType("fan_model")
    module.fan_squeeze = fan_squeeze
    monkeypatch.setitem(sys.modules, "fan_model", module)
    src = tmp_path / "compressed_model.pth"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(fan_squeeze(), src, _use_new_zipfile_serialization=False)
    dst = tmp_path / "out.safetensors"
    result = CliRunner().invoke(cli, ["weights", "import", str(src), "-o", str(dst)])  # auto
    assert result.exit_code == 0, result.output
    assert "fan_distilled" in result.output and dst.is_file()
    again = CliRunner().invoke(
        cli,
        ["weights", "import", str(src), "--kind", "fan-distilled", "-o", str(dst), "--overwrite"],
    )
    assert again.exit_code == 0, again.output
    fan4 = tmp_path / "fan4.pth.tar"
    torch.save(FAN().state_dict(), fan4)
    result = CliRunner().invoke(
        cli, ["weights", "import", str(fan4), "-o", str(tmp_path / "f.safetensors")]
    )
    assert result.exit_code == 0 and "fan4" in result.output, result.output
    bad = CliRunner().invoke(cli, ["weights", "import", str(dst), "--kind", "fan-distilled"])
    assert bad.exit_code != 0 and "out.safetensors" in bad.output


def test_nme_of_sr_by_hand(face_folder):
    from progface.landmarks.data import load_landmark_faces
    from progface.landmarks.evaluate import nme_of_sr
    from progface.landmarks.sources import LandmarkHeatmaps

    faces = load_landmark_faces([face_folder])
    hr = faces.float_images()
    # a "method" that returns the HR faces, and a "source" that renders the labels shifted by
    # 3 px along x: the error is exactly the shift (plus decoding rounding, none at integers)
    shifted = faces.points.round() + torch.tensor([3.0, 0.0])
    source = LandmarkHeatmaps(shifted)
    got = nme_of_sr(lambda lr: hr, hr, faces.points.round(), source=source, norm="size")
    assert got.tolist() == pytest.approx([3 / 128] * 4, abs=1e-6)
    # without labels the reference is the source's own landmarks on HR: zero error
    assert nme_of_sr(lambda lr: hr, hr, source=source).abs().max() < 1e-6


def test_landmark_nme_metric_looks_at_64_px_copies():
    """Zero for identical faces; the network runs on 64-px copies (where it locates landmarks),
    with its aligned-face shape prior. Moving the SR face further moves its landmarks further,
    but the prior holds them near where landmarks of an aligned face can be: an 8-px shift
    (6.25 % of 128, a face no longer aligned) reads as about 1.4 %, a 3-px one as about 0.9 %."""
    from progface.builtin.landmarks import _NME_SOURCES, landmark_nme

    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    blob = lambda cx, cy: torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 200)  # noqa: E731
    face = (0.3 + 0.5 * (blob(45, 55) + blob(83, 55) + blob(64, 95))).clamp(0, 1)
    hr = face.expand(1, 3, 128, 128).clone()
    assert float(landmark_nme(hr, hr)) == 0.0
    assert _NME_SOURCES["cpu"].work_size == 64
    assert _NME_SOURCES["cpu"].prior is not None
    small = float(landmark_nme(torch.roll(hr, shifts=3, dims=-1), hr))
    large = float(landmark_nme(torch.roll(hr, shifts=8, dims=-1), hr))
    assert 0.5 < small < large < 6.25
