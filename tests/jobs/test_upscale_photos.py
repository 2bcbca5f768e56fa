"""``progface upscale`` on photos and mixed inputs, with fake detectors registered in-process."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from progface import plugins
from progface.cli import cli
from progface.faces.align import TEMPLATES, apply_affine
from progface.faces.detect import Face
from progface.hookspecs import hookimpl
from progface.jobs.upscale import input_kind
from progface.registry import FaceDetectorSpec
from tests.faces.helpers import helen_dir, photo_with_face, similarity, synthetic_face

PHOTO_SIZE = (300, 200)  # width, height: a photo by auto's rule (longer side > 256)
FACE_CENTRE = (120.0, 90.0)


def _to_photo() -> torch.Tensor:
    """aligned -> photo similarity: a face ~9.5 px wide centred at FACE_CENTRE."""
    m = similarity(0.15, 10.0, 0, 0)
    c = apply_affine(m, torch.tensor([[63.5, 70.0]]))[0]
    m[:, 2] = torch.tensor(FACE_CENTRE, dtype=torch.float64) - c
    return m


KNOWN_POINTS = apply_affine(_to_photo(), TEMPLATES["standard"]).numpy()


class KnownFaceDetector:
    """Finds the face the test pasted, at its known 5 points, in photos of PHOTO_SIZE."""

    name = "known-face"

    def detect(self, image):
        h, w = np.asarray(image).shape[:2]
        if (w, h) != PHOTO_SIZE:
            return []
        x0, y0 = KNOWN_POINTS.min(0) - 3
        x1, y1 = KNOWN_POINTS.max(0) + 3
        return [Face((x0, y0, x1, y1), 0.9, KNOWN_POINTS.copy())]


class FakeDetectorPlugin:
    @hookimpl
    def register_face_detectors(self, register):
        register(FaceDetectorSpec("known-face", build=lambda **kw: KnownFaceDetector(),
                                  summary="test detector", extra=None))  # fmt: skip


@pytest.fixture
def fake_detector(register_plugin):
    register_plugin(FakeDetectorPlugin(), "fake-detector-plugin")
    return "known-face"


@pytest.fixture
def photo_file(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo = photo_with_face(synthetic_face(), _to_photo(), size=PHOTO_SIZE)
    Image.fromarray(photo).save(folder / "party.png")
    return folder / "party.png"


def _run(*args):
    result = CliRunner().invoke(cli, ["upscale", *map(str, args)])
    assert result.exit_code == 0, (result.output, result.stderr)
    return result


def _files(out):
    manifest = json.loads((out / "manifest.json").read_text())
    return manifest, {os.path.basename(f["input"]): f for f in manifest["files"]}


def test_builtin_and_plugin_detectors_are_registered(fake_detector):
    regs = plugins.registries()["face_detectors"]
    assert {"opencv-haar", "dlib-hog", "dlib-cnn", "known-face"} <= set(regs.names())
    assert plugins.defaults("face_detectors", "upscale") == ["opencv-haar"]
    assert regs.get("known-face").plugin == "fake-detector-plugin"
    rows = json.loads(CliRunner().invoke(cli, ["plugins", "--json"]).output)
    by_name = {r["name"]: r for r in rows}
    assert by_name["fake-detector-plugin"]["registered"] == {"face_detectors": ["known-face"]}
    assert "opencv-haar" in by_name["progface.builtin.faces"]["registered"]["face_detectors"]
    models = json.loads(CliRunner().invoke(cli, ["models", "--json"]).output)
    assert {"face detector"} == {r["kind"] for r in models if r["name"] == "known-face"}


def test_auto_rule():
    assert input_kind(128, 128) == "crop" and input_kind(178, 218) == "crop"
    assert input_kind(12, 12) == "crop" and input_kind(160, 128) == "crop"
    assert input_kind(300, 200) == "photo" and input_kind(256, 192) == "photo"
    assert input_kind(512, 512) == "photo"


def test_a_photo_is_restored_with_a_plugin_detector(fake_detector, photo_file, tmp_path):
    out = tmp_path / "out"
    _run(photo_file, "-o", out, "--detector", fake_detector, "--method", "bicubic",
         "--scale", "4", "--draw-boxes")  # fmt: skip
    assert Image.open(out / "party.png").size == (PHOTO_SIZE[0] * 4, PHOTO_SIZE[1] * 4)
    assert Image.open(out / "faces" / "party_0_lr.png").size == (16, 16)
    assert Image.open(out / "faces" / "party_0_sr.png").size == (128, 128)
    manifest, files = _files(out)
    entry = files["party.png"]
    assert entry["kind"] == "photo" and entry["status"] == "written" and entry["scale"] == 4
    (face,) = entry["faces"]
    assert face["action"] == "restored" and face["method"] == "bicubic"
    np.testing.assert_allclose(face["landmarks5"], KNOWN_POINTS, atol=0.01)
    assert face["box"][0] == pytest.approx(KNOWN_POINTS[:, 0].min() - 3, abs=0.01)
    assert manifest["photos"]["detector"] == "known-face"
    assert list(photo_file.parent.iterdir()) == [photo_file]  # nothing written beside the input


def test_a_mixed_folder_handles_and_reports_each_file(fake_detector, photo_file, tmp_path):
    src = photo_file.parent
    Image.open(photo_file).crop((0, 0, 128, 128)).save(src / "crop.png")  # an aligned-size crop
    (src / "corrupt.png").write_bytes(b"\x89PNG garbage")
    (src / "notes.txt").write_text("not an image")
    Image.new("RGB", (400, 300), (20, 120, 200)).save(src / "sky.jpg")  # a photo, no face
    out = tmp_path / "out"
    result = _run(src, "-o", out, "--detector", fake_detector, "--method", "bilinear",
                  "--scale", "2", "--ext", "jpg", "--suffix", "_restored")  # fmt: skip
    manifest, files = _files(out)
    assert files["crop.png"]["kind"] == "crop" and (out / "sr" / "crop.png").is_file()
    assert files["party.png"]["kind"] == "photo" and files["party.png"]["restored"] == 1
    assert Image.open(out / "party_restored.jpg").size == (600, 400)
    assert files["sky.jpg"]["faces"] == [] and (out / "sky_restored.jpg").is_file()
    assert "no face found" in files["sky.jpg"]["notes"][0]
    assert files["corrupt.png"]["status"] == "skipped"
    assert files["notes.txt"]["reason"].startswith("not an image file")
    assert manifest["counts"] == {"written": 3, "skipped": 2}
    assert "skipped" in result.stderr and "corrupt.png" in result.stderr
    # again: everything is kept, nothing replaced
    again = CliRunner().invoke(cli, ["upscale", str(src), "-o", str(out), "--detector",
                                     fake_detector, "--ext", "jpg", "--suffix", "_restored"])  # fmt: skip
    assert again.exit_code == 0 and "kept 3 input(s)" in again.output


def test_aligned_forces_crops(fake_detector, photo_file, tmp_path):
    out = tmp_path / "out"
    _run(photo_file, "-o", out, "--aligned", "--detector", fake_detector, "--method", "bicubic")
    _, files = _files(out)
    assert files["party.png"]["kind"] == "crop" and files["party.png"]["lr"] == "simulated"
    assert Image.open(out / "sr" / "party.png").size == (128, 128)
    assert not (out / "faces").exists()


def test_photos_forces_photos(fake_detector, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (64, 64), (200, 100, 50)).save(src / "thumb.png")  # a crop by size
    out = tmp_path / "out"
    _run(src, "-o", out, "--photos", "--detector", fake_detector, "--method", "bicubic")
    _, files = _files(out)
    assert files["thumb.png"]["kind"] == "photo"
    assert Image.open(out / "thumb.png").size == (512, 512)


def test_a_tiny_crop_is_enlarged_with_a_warning(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (10, 12), (90, 60, 30)).save(src / "tiny.png")
    out = tmp_path / "out"
    result = _run(src, "-o", out, "--method", "bilinear")
    _, files = _files(out)
    assert files["tiny.png"]["lr"] == "enlarged" and files["tiny.png"]["size"] == [10, 12]
    assert "enlarged to 16x16" in files["tiny.png"]["warning"]
    assert "warning:" in result.stderr and "tiny.png" in result.stderr
    assert (np.abs(np.asarray(Image.open(out / "sr" / "tiny.png"), int) - (90, 60, 30)) <= 1).all()


def test_simulate_writes_a_panel_and_the_psnr(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(synthetic_face()).save(src / "face.png")
    out = tmp_path / "out"
    _run(src, "-o", out, "--method", "bicubic", "--simulate")
    _, files = _files(out)
    panel = Image.open(out / "simulate" / "face.png")
    assert panel.size == (4 * 128 + 3 * 2, 14 + 128)
    psnr = files["face.png"]["psnr"]
    assert psnr["sr"] == pytest.approx(psnr["bicubic"], abs=0.01) and 20 < psnr["sr"] < 40


def test_a_missing_faces_extra_is_named_and_crops_still_run(register_plugin, photo_file, tmp_path):
    class NeedsExtra:
        @hookimpl
        def register_face_detectors(self, register):
            def build(**options):
                raise ImportError("No module named 'cv2'")

            register(FaceDetectorSpec("needs-cv2", build=build, summary="x", extra="faces"))

    register_plugin(NeedsExtra(), "needs-extra")
    Image.fromarray(synthetic_face()).save(photo_file.parent / "face.png")
    out = tmp_path / "out"
    result = _run(photo_file.parent, "-o", out, "--detector", "needs-cv2", "--method", "bicubic")
    _, files = _files(out)
    assert files["face.png"]["status"] == "written"
    reason = files["party.png"]["reason"]
    assert "pip install 'progface[faces]'" in reason and "\n" not in reason
    assert "party.png" in result.stderr


def test_recursive_finds_subfolders(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(synthetic_face()).save(src / "sub" / "deep.png")
    Image.fromarray(synthetic_face()).save(src / "top.png")
    out = tmp_path / "out"
    _run(src, "-o", out, "--method", "bicubic")
    assert sorted(p.name for p in (out / "sr").iterdir()) == ["top.png"]
    (src / "sub" / "x" / "y").mkdir(parents=True)
    Image.fromarray(synthetic_face()).save(src / "sub" / "x" / "y" / "deep.png")
    Image.fromarray(synthetic_face()).save(src / "sub" / "x" / "top.jpg")
    _run(src, "-o", tmp_path / "out2", "--method", "bicubic", "--recursive")
    out2 = tmp_path / "out2"
    written = sorted(p.relative_to(out2 / "sr").as_posix() for p in (out2 / "sr").rglob("*.png"))
    assert written == ["sub/deep.png", "sub/x/top.png", "sub/x/y/deep.png", "top.png"]
    compare = sorted(
        p.relative_to(out2 / "compare").as_posix() for p in out2.rglob("compare/**/*.png")
    )
    assert compare == written  # each output mirrors the input's subfolder


def test_the_default_detector_on_a_real_photo(tmp_path):
    pytest.importorskip("cv2", reason="needs the faces extra")
    pytest.importorskip("dlib", reason="needs the faces extra")
    folder = helen_dir()
    if folder is None:
        pytest.skip("../shared/data/photos/helen_train is absent (only CI and the team have it)")
    name = "100040721.jpg"  # 715x704, faces of 120-200 px
    out = tmp_path / "out"
    _run(folder / name, "-o", out, "--method", "bicubic", "--scale", "1", "--max-face", "0")
    _, files = _files(out)
    entry = files[name]
    assert entry["kind"] == "photo" and entry["faces"], entry
    assert {f["action"] for f in entry["faces"]} == {"too-large"}


def test_photos_in_a_subfolder_named_like_an_output_folder_stay_apart(fake_detector, photo_file,
                                                                      tmp_path):  # fmt: skip
    """in/faces/party.png (a photo) and in/party.png (a crop): the photo goes to
    out/faces-photos/, not among the crops' or faces' outputs, and nothing is kept back."""
    from tests.jobs.conftest import smooth_face

    src = tmp_path / "in"
    for sub in ("faces", "sr"):
        (src / sub).mkdir(parents=True)
        (src / sub / "party.png").write_bytes(photo_file.read_bytes())
    smooth_face(3).save(src / "party.png")
    out = tmp_path / "out"
    _run(src, "-o", out, "--detector", fake_detector, "--method", "bicubic", "--scale", "2",
         "--recursive")  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"written": 3}
    assert Image.open(out / "faces-photos" / "party.png").size == (600, 400)
    assert Image.open(out / "sr-photos" / "party.png").size == (600, 400)
    assert Image.open(out / "sr" / "party.png").size == (128, 128)  # the crop's
    assert (out / "faces" / "faces-photos" / "party_0_sr.png").is_file()
