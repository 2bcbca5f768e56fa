from __future__ import annotations

import pytest

from progface.io.atomic import write_atomic, write_new


def test_no_overwrite_keeps_the_existing_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("mine")
    with pytest.raises(FileExistsError, match="x.txt: exists"):
        write_atomic(target, lambda tmp: tmp.write_text("new"), overwrite=False)
    assert target.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


def test_a_failing_writer_leaves_neither_target_nor_temp(tmp_path):
    def boom(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(tmp_path / "x.txt", boom)
    assert list(tmp_path.iterdir()) == []


def test_write_new_picks_the_next_free_name(tmp_path):
    (tmp_path / "m.json").write_text("1")
    (tmp_path / "m-2.json").write_text("2")
    path = write_new(tmp_path / "m.json", lambda tmp: tmp.write_text("3"))
    assert path.name == "m-3.json" and path.read_text() == "3"
    assert (tmp_path / "m.json").read_text() == "1"


def test_sigterm_during_a_write_leaves_no_temp_file(tmp_path):
    import os
    import subprocess
    import sys

    code = """
import os, signal, sys, time
from progface import cli
from progface.io.atomic import write_atomic
signal.signal(signal.SIGTERM, cli._terminate)  # what progface's main() installs
def writer(tmp):
    tmp.write_text("half")
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)
write_atomic(sys.argv[1], writer)
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.png")], env=env,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 128 + 15
    assert list(tmp_path.iterdir()) == []


def test_written_files_get_the_umask_permissions_not_the_temp_files(tmp_path):
    import os
    import stat

    from progface.io.atomic import write_text_atomic

    old = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "shared.txt", "x")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        os.umask(0o077)
        private = write_text_atomic(tmp_path / "private.txt", "x")
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    finally:
        os.umask(old)
