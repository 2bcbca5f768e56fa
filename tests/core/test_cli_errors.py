"""Every user error of the command line is one line naming the file or option."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner
from PIL import Image

from progface.cli import cli


@pytest.fixture
def faces(tmp_path):
    src = tmp_path / "faces"
    src.mkdir()
    Image.new("RGB", (64, 64), (90, 120, 200)).save(src / "a.png")
    return src


def _one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_upscale_onto_a_file(faces, tmp_path):
    (tmp_path / "ofile").write_text("x")
    line = _one_line_error(
        CliRunner().invoke(cli, ["upscale", str(faces), "-o", str(tmp_path / "ofile")])
    )
    assert line == f"Error: {tmp_path / 'ofile'}: -o/--out is a file, not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_upscale_into_a_read_only_folder(faces, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        line = _one_line_error(
            CliRunner().invoke(cli, ["upscale", str(faces), "-o", str(ro / "x")])
        )
    finally:
        ro.chmod(0o755)
    assert str(ro / "x") in line and "cannot create the -o/--out folder" in line


def test_train_value_out_of_range_fails_before_any_folder(faces, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--data", str(faces), "--out", str(run), "--set", "loop.batch_size=0"]
    line = _one_line_error(CliRunner().invoke(cli, args))
    assert line == "Error: loop.batch_size: must be at least 1, got 0"
    assert not run.exists()


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("text.pth", b"hello\n", "not a readable torch file (KeyError"),
        ("bad.safetensors", b"\x10" + bytes(7) + b'{"a":1}xxxxxxxx', "SafetensorError"),
    ],
)
def test_weights_import_of_a_corrupt_file(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    line = _one_line_error(CliRunner().invoke(cli, ["weights", "import", str(path)]))
    assert line.startswith(f"Error: {path}: cannot tell what this file is") and problem in line


def test_progface_debug_keeps_the_traceback(tmp_path, monkeypatch):
    path = tmp_path / "text.pth"
    path.write_bytes(b"hello\n")
    monkeypatch.setenv("PROGFACE_DEBUG", "1")
    result = CliRunner().invoke(cli, ["weights", "import", str(path)])
    assert result.exit_code == 1 and type(result.exception).__name__ == "WeightsError"


def test_a_bug_names_its_type_and_the_debug_switch(monkeypatch):
    import progface.jobs.inventory

    def bug():
        raise KeyError("oops")

    monkeypatch.setattr(progface.jobs.inventory, "model_rows", bug)
    line = _one_line_error(CliRunner().invoke(cli, ["models"]))
    assert line == "Error: KeyError: 'oops' (set PROGFACE_DEBUG=1 for the traceback)"
