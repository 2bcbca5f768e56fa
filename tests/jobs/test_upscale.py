from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from progface.builtin.paper import OURS_WEIGHTS
from progface.cli import cli
from progface.jobs.runtime import load_method
from progface.jobs.upscale import output_names, upscale_folder


def _snapshot(folder):
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir()}


def test_mixed_folder_writes_good_faces_and_reports_the_rest(face_folder, tmp_path):
    before = _snapshot(face_folder)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["upscale", str(face_folder), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "sr").iterdir()) == [
        "a.png",
        "b.png",
        "gray.png",
        "tiny.png",
        "wide.png",
    ]
    for name in ("a", "b", "gray", "tiny", "wide"):
        assert Image.open(out / "sr" / f"{name}.png").size == (128, 128)
        assert Image.open(out / "compare" / f"{name}.png").size == (3 * 128 + 2 * 2, 14 + 128)
    manifest = json.loads((out / "manifest.json").read_text())
    reasons = {os.path.basename(f["input"]): f.get("reason") for f in manifest["files"]}
    assert manifest["counts"] == {"written": 5, "skipped": 3}
    assert reasons["notes.txt"] == "not an image file (suffix '.txt')"
    assert reasons["empty.png"] == "empty file (0 bytes)"
    assert reasons["corrupt.jpg"].startswith("truncated image: image file is truncated")
    files = {os.path.basename(f["input"]): f for f in manifest["files"]}
    assert files["tiny.png"]["lr"] == "enlarged"  # under 16 px: enlarged, with a warning
    assert files["tiny.png"]["warning"].startswith("smaller than the network's 16x16 input")
    assert files["a.jpg"]["lr"] == "simulated" and files["a.jpg"]["kind"] == "crop"
    assert manifest["method"] == "ours" and manifest["crop"] == "center"  # the shipped default
    assert manifest["weights"]["sha256"] == OURS_WEIGHTS.sha256
    assert "skipped" in result.output and "corrupt.jpg" in result.output
    assert _snapshot(face_folder) == before  # the input folder is untouched
    assert not [p for p in out.rglob(".*")]  # no temp files left behind


def test_sr_of_bicubic_equals_pil_chain_then_pil_bicubic(face_folder, tmp_path):
    out = tmp_path / "out"
    upscale_folder(face_folder, out, method="bicubic", progress=False)
    img = Image.open(face_folder / "b.png").convert("RGB")  # 128x128 already
    lr = img.resize((64, 64), Image.BILINEAR).resize((32, 32), Image.BILINEAR)
    lr = lr.resize((16, 16), Image.BILINEAR)
    ref = np.asarray(lr.resize((128, 128), Image.BICUBIC)).astype(int)
    got = np.asarray(Image.open(out / "sr" / "b.png")).astype(int)
    assert np.abs(got - ref).mean() < 1.0  # PIL parity of the chain (0.5/255) and the resize


def test_existing_outputs_are_kept_unless_overwrite(face_folder, tmp_path):
    out = tmp_path / "out"
    upscale_folder(face_folder, out, progress=False)
    marker = out / "sr" / "a.png"
    marker.write_bytes(b"user edited")
    again = upscale_folder(face_folder, out, progress=False)
    assert again["counts"]["kept"] == 5 and marker.read_bytes() == b"user edited"
    upscale_folder(face_folder, out, overwrite=True, progress=False)
    assert Image.open(marker).size == (128, 128)


def test_16px_input_is_used_directly(tmp_path):
    src = tmp_path / "lr"
    src.mkdir()
    Image.fromarray(np.full((16, 16, 3), 77, np.uint8)).save(src / "x.png")
    upscale_folder(src, tmp_path / "out", method="bilinear", progress=False)
    assert (np.asarray(Image.open(tmp_path / "out" / "sr" / "x.png")) == 77).all()


def test_output_inside_input_is_refused(face_folder):
    result = CliRunner().invoke(cli, ["upscale", str(face_folder), "-o", str(face_folder / "out")])
    assert result.exit_code != 0
    assert "must not be the input folder or inside it" in result.output
    assert not (face_folder / "out").exists()


def test_names_sharing_a_stem_keep_their_suffix(tmp_path):
    names = output_names([tmp_path / "a.jpg", tmp_path / "a.png", tmp_path / "b.png"])
    assert list(names.values()) == ["a_jpg.png", "a_png.png", "b.png"]


def test_output_names_mirror_subfolders_and_stay_unique_within_each(tmp_path):
    a, b = tmp_path / "x.jpg", tmp_path / "x.png"
    deep, deep2, other = (
        tmp_path / "s" / "x.png",
        tmp_path / "s" / "x.jpg",
        tmp_path / "T" / "x.png",
    )
    names = output_names([a, b, deep, deep2, other], {deep: "s", deep2: "s", other: "T"})
    assert names == {a: "x_jpg.png", b: "x_png.png", deep: "s/x_png.png", deep2: "s/x_jpg.png",
                     other: "T/x.png"}  # fmt: skip


def test_output_names_are_unique_by_construction(tmp_path):
    paths = [tmp_path / n for n in ("a.jpg", "a.png", "a_png.png", "A_PNG-2.jpg", "B.png", "b.jpg")]
    names = output_names(paths)
    assert names[tmp_path / "a.png"] == "a_png.png"  # sorted order: a.png before a_png.png
    assert names[tmp_path / "a_png.png"] == "a_png-3.png"  # -2 is wanted by A_PNG-2.jpg
    assert len({n.casefold() for n in names.values()}) == len(paths)


def test_two_inputs_never_share_an_output(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i, name in enumerate(("a.jpg", "a.png", "a_png.png")):
        Image.new("RGB", (64, 64), (40 * i, 90, 200)).save(src / name)
    manifest = upscale_folder(src, tmp_path / "out", progress=False)
    written = [f["sr"] for f in manifest["files"] if f["status"] == "written"]
    assert len(written) == 3 and len(set(written)) == 3
    assert len(list((tmp_path / "out" / "sr").iterdir())) == 3


def test_a_users_file_is_never_replaced_without_overwrite(face_folder, tmp_path):
    out = tmp_path / "o"
    (out / "sr").mkdir(parents=True)
    (out / "sr" / "a.png").write_text("mine")
    (out / "manifest.json").write_text("my notes")
    result = CliRunner().invoke(cli, ["upscale", str(face_folder), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "sr" / "a.png").read_text() == "mine"
    assert (out / "manifest.json").read_text() == "my notes"
    manifest = json.loads((out / "manifest-2.json").read_text())
    kept = [f for f in manifest["files"] if f["status"] == "kept"]
    assert [os.path.basename(f["input"]) for f in kept] == ["a.jpg"]
    assert not (out / "compare" / "a.png").exists()  # nothing half-written for a kept input
    assert "kept 1 input(s)" in result.output and "manifest-2.json" in result.output
    assert not [p for p in out.rglob(".*")]


def test_a_file_appearing_during_the_run_is_kept(monkeypatch, face_folder, tmp_path):
    from progface.jobs import upscale_outputs

    real = upscale_outputs.save_atomic

    def racing(image, path, overwrite=True):
        if path.name == "b.png" and path.parent.name == "sr":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("appeared")
        return real(image, path, overwrite=overwrite)

    monkeypatch.setattr(upscale_outputs, "save_atomic", racing)
    manifest = upscale_folder(face_folder, tmp_path / "out", progress=False)
    assert (tmp_path / "out" / "sr" / "b.png").read_text() == "appeared"
    status = {os.path.basename(f["input"]): f["status"] for f in manifest["files"]}
    assert status["b.png"] == "kept" and status["a.jpg"] == "written"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no such file or folder"),
        ("empty", "no images"),
    ],
)
def test_folder_errors_are_one_line(tmp_path, setup, message):
    target = tmp_path / "in"
    if setup == "empty":
        target.mkdir()
    result = CliRunner().invoke(cli, ["upscale", str(target), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    line = result.output.strip()
    assert line.startswith("Error: ") and message in line and str(target) in line
    assert "\n" not in line


def test_non_square_with_crop_none_is_reported(face_folder, tmp_path):
    manifest = upscale_folder(face_folder, tmp_path / "out", crop="none", progress=False)
    reasons = {os.path.basename(f["input"]): f.get("reason") for f in manifest["files"]}
    assert reasons["wide.png"].startswith("not square (160x128)")


def test_unknown_method_suggests(face_folder, tmp_path):
    result = CliRunner().invoke(
        cli, ["upscale", str(face_folder), "-o", str(tmp_path / "o"), "--method", "bicubc"]
    )
    assert result.exit_code == 1
    assert "unknown method 'bicubc'; did you mean 'bicubic'" in result.output


def test_folders_and_dangling_links_are_reported(face_folder, tmp_path):
    (face_folder / "sub").mkdir()
    (face_folder / "gone.png").symlink_to(tmp_path / "nowhere.png")
    Image.new("RGB", (64, 64), (9, 99, 199)).save(face_folder / "c.gif")
    manifest = upscale_folder(face_folder, tmp_path / "out", progress=False)
    reasons = {os.path.basename(f["input"]): f.get("reason") for f in manifest["files"]}
    assert reasons["sub"] == "a folder (folders are not searched)"
    assert reasons["gone.png"] == "dangling symbolic link (its target does not exist)"
    assert (tmp_path / "out" / "sr" / "c.png").is_file()


def test_a_file_path_is_an_input_and_a_non_image_is_reported(tmp_path):
    target = tmp_path / "in"
    target.write_text("x")
    result = CliRunner().invoke(cli, ["upscale", str(target), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert f"skipped {target}: not a readable image" in result.output


def test_the_cpu_and_gpu_pipelines_write_the_same_files(face_folder, tmp_path, monkeypatch):
    """On a CPU each batch is decoded, run and written in turn (threads for the I/O); on a GPU
    decoding and writing overlap the network. Both give the same files and manifest entries
    (the overlapped one run here on the CPU, forced by the device test)."""
    from progface.jobs import upscale_crops

    def files(out):
        return {p.relative_to(out): p.read_bytes() for p in out.rglob("*.png")}

    in_turn = upscale_folder(face_folder, tmp_path / "a", batch_size=2, progress=False)
    real = upscale_crops._overlapped
    used = []

    def overlapped(batches, crop, model, bicubic, device, outputs):
        used.append(device)
        return real(batches, crop, model, bicubic, "cpu", outputs)

    monkeypatch.setattr(upscale_crops, "_overlapped", overlapped)
    monkeypatch.setattr(upscale_crops, "_in_turn", None)  # must not be called on a GPU
    import progface.jobs.upscale as upscale

    monkeypatch.setattr(upscale, "pick_device", lambda device: "cuda")
    model, _ = load_method("ours", "cpu", None, "auto")  # what the CPU run used
    monkeypatch.setattr(upscale, "load_method", lambda *args: (model, {}))
    over = upscale_folder(face_folder, tmp_path / "b", batch_size=2, progress=False)
    assert used == ["cuda"] and files(tmp_path / "a") == files(tmp_path / "b")
    strip = [{k: v for k, v in e.items() if k not in ("sr", "compare")} for e in over["files"]]
    assert strip == [{k: v for k, v in e.items() if k not in ("sr", "compare")}
                     for e in in_turn["files"]]  # fmt: skip
