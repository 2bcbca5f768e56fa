"""``progface --help`` and ``--version`` import neither torch nor any plugin module.

Each check runs in a fresh interpreter and looks at ``sys.modules`` afterwards (no timing).
A plugin installed through an entry point sits on the path, and the same probe run on a
command that loads plugins must see it, the built-ins and torch: so the probe can tell.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import json, runpy, sys
how, out, args = sys.argv[1], sys.argv[2], sys.argv[3:]
code = 0
try:
    if how == "script":  # what the console script does
        from progface.cli import cli
        cli(args, prog_name="progface")
    elif how == "module":  # python -m progface ARGS
        sys.argv = ["progface", *args]
        runpy.run_module("progface", run_name="__main__", alter_sys=True)
    else:  # import the named modules
        for name in args:
            __import__(name)
except SystemExit as exit:
    code = exit.code or 0
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""

PLUGIN = """
import click
from progface import hookimpl


@click.command(name="probe-hello")
def hello():
    click.echo("hello")


@hookimpl
def register_commands(cli):
    cli.add_command(hello)
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A folder with an entry-point plugin ``progface_startup_probe`` (no pip needed)."""
    site = tmp_path_factory.mktemp("site")
    (site / "progface_startup_probe.py").write_text(PLUGIN)
    info = site / "progface_startup_probe-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: progface-startup-probe\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text("[progface]\nprobe = progface_startup_probe\n")
    return site


def _probe(site: Path, tmp_path: Path, how: str, *args: str) -> tuple[int, set[str], str]:
    out = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    env.pop("PROGFACE_DISABLED_PLUGINS", None)
    env.pop("PROGFACE_LOAD_PLUGINS", None)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, how, str(out), *args],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(out.read_text())
    return facts["code"], set(facts["modules"]), proc.stdout


def _heavy(modules: set[str]) -> list[str]:
    """torch, the built-in plugin modules and the entry-point plugin, where loaded."""
    return sorted(
        m
        for m in modules
        if m == "torch" or m.startswith(("progface.builtin.", "progface_startup_probe"))
    )


def test_the_probe_sees_plugins_and_torch_where_they_are_loaded(site, tmp_path):
    code, modules, stdout = _probe(site, tmp_path, "module", "plugins")
    assert code == 0 and "probe  (version 0.1)\n  commands: probe-hello" in stdout
    heavy = _heavy(modules)
    assert {"torch", "progface.builtin.paper", "progface_startup_probe"} <= set(heavy)
    code, modules, stdout = _probe(site, tmp_path, "script", "probe-hello")
    assert code == 0 and stdout == "hello\n"  # a plugin command still runs


@pytest.mark.parametrize("how", ["script", "module"])
@pytest.mark.parametrize(
    ("args", "shows"),
    [
        (["--help"], "Usage: progface [OPTIONS] COMMAND [ARGS]..."),
        (["--version"], "progface, version"),
        (["weights", "dir"], ""),
    ],
)
def test_help_and_version_import_no_torch_and_no_plugin(site, tmp_path, how, args, shows):
    code, modules, stdout = _probe(site, tmp_path, how, *args)
    assert code == 0 and shows in stdout
    assert _heavy(modules) == []
    assert "progface.plugins" not in modules  # not even the plugin manager


def test_help_lists_every_core_command_and_says_how_to_see_plugin_commands(site, tmp_path):
    from progface.cli import CORE_COMMANDS

    _, _, stdout = _probe(site, tmp_path, "script", "--help")
    rows = stdout.split("Commands:\n")[1].split("\n\n")[0].splitlines()
    assert [row.split()[0] for row in rows] == sorted(CORE_COMMANDS)
    assert "`progface plugins` lists them" in " ".join(stdout.split())
    assert "probe-hello" not in stdout


def test_importing_the_core_modules_imports_no_torch(site, tmp_path):
    names = ["progface", "progface.hookspecs", "progface.registry", "progface.plugins",
             "progface.weights", "progface.cli", "progface.cli.options"]  # fmt: skip
    code, modules, _ = _probe(site, tmp_path, "import", *names)
    assert code == 0 and set(names) <= modules
    assert _heavy(modules) == []
