from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from progface import hookimpl, plugins
from progface.cli import cli
from progface.registry import DuplicateNameError, MethodSpec, MetricSpec
from tests.helpers import pip_install_target


class NearestPlugin:
    @hookimpl
    def register_methods(self, register):
        register(MethodSpec("nearest-test", load=lambda **kw: None, description="test method"))


def test_builtins_registered_through_hooks():
    regs = plugins.registries()
    assert {"bilinear", "bicubic"} <= set(regs["methods"].names())
    assert {"psnr", "ssim", "ms-ssim"} <= set(regs["metrics"].names())
    assert regs["methods"].get("bicubic").plugin == "progface.builtin.classical"


def test_in_process_plugin_is_listed(register_plugin):
    register_plugin(NearestPlugin(), "nearest-plugin")
    assert plugins.get("methods", "nearest-test").plugin == "nearest-plugin"
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["nearest-plugin"]["registered"] == {"methods": ["nearest-test"]}
    assert rows["nearest-plugin"]["hooks"] == ["register_methods"]
    assert rows["progface.builtin.classical"]["builtin"] is True


def test_duplicate_name_across_plugins_names_both(register_plugin):
    class Clash:
        @hookimpl
        def register_metrics(self, register):
            register(MetricSpec("psnr", fn=None))

    register_plugin(Clash(), "clash-plugin")
    assert plugins.get("metrics", "psnr").plugin == "progface.builtin.metrics"
    assert plugins.failures["clash-plugin"] == (
        "DuplicateNameError: metric 'psnr' is registered by both plugin "
        "'progface.builtin.metrics' and plugin 'clash-plugin'"
    )


def test_a_plugin_taking_a_builtin_name_contributes_nothing(register_plugin):
    class Taker:
        @hookimpl
        def register_methods(self, register):
            register(MethodSpec("taker-fine", load=lambda **kw: None))
            register(MethodSpec("bicubic", load=lambda **kw: None))

    register_plugin(Taker(), "taker-plugin")
    register_plugin(NearestPlugin(), "nearest-plugin")
    assert plugins.get("methods", "bicubic").plugin == "progface.builtin.classical"
    assert "taker-fine" not in plugins.registries()["methods"]  # all or nothing
    assert plugins.get("methods", "nearest-test").plugin == "nearest-plugin"
    result = CliRunner().invoke(cli, ["models", "--json"])
    assert result.exit_code == 0, result.output


def test_a_hook_raising_after_registering_leaves_nothing_usable(register_plugin):
    class Half:
        @hookimpl
        def register_metrics(self, register):
            register(MetricSpec("half-metric", fn=None))

        @hookimpl
        def register_methods(self, register):
            register(MethodSpec("half-method", load=lambda **kw: None))
            raise RuntimeError("boom after registering")

    register_plugin(Half(), "half-plugin")
    regs = plugins.registries()
    assert "half-method" not in regs["methods"] and "half-metric" not in regs["metrics"]
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "half-plugin  [failed to load: RuntimeError: boom after registering]" in result.output
    assert result.output.count("half-plugin") == 1


@pytest.fixture
def fresh_cli(register_plugin):
    """A new ``progface`` group: the core commands, no plugin commands loaded yet (the
    module-level ``cli`` loads them once per process)."""
    from progface.cli import ProgfaceGroup

    return ProgfaceGroup("progface")


def _command(name, text):
    import click

    return click.Command(name, callback=lambda: click.echo(text), help=f"{text}.")


class HelloCommand:
    @hookimpl
    def register_commands(self, cli):
        cli.add_command(_command("hello-test", "hello from a plugin"))


def test_a_plugin_command_runs_and_is_listed(register_plugin, fresh_cli):
    register_plugin(HelloCommand(), "hello-plugin")
    assert "hello-test" not in fresh_cli.commands  # not loaded until a name is not a core one
    result = CliRunner().invoke(fresh_cli, ["hello-test"])
    assert result.exit_code == 0 and result.output == "hello from a plugin\n", result.output
    rows = {
        r["name"]: r
        for r in json.loads(CliRunner().invoke(fresh_cli, ["plugins", "--json"]).output)
    }
    assert rows["hello-plugin"]["registered"] == {"commands": ["hello-test"]}
    text = CliRunner().invoke(fresh_cli, ["plugins"]).output
    assert "hello-plugin  (version ?)\n  commands: hello-test\n" in text


def test_a_failing_commands_hook_adds_nothing_and_the_rest_work(register_plugin, fresh_cli):
    class BadCommands:
        @hookimpl
        def register_methods(self, register):
            register(MethodSpec("bad-commands-method", load=lambda **kw: None))

        @hookimpl
        def register_commands(self, cli):
            cli.add_command(_command("half-command", "half"))
            raise RuntimeError("boom")

    register_plugin(BadCommands(), "bad-commands")
    register_plugin(HelloCommand(), "hello-plugin")
    runner = CliRunner()
    models = runner.invoke(fresh_cli, ["models", "--json"])  # a core command, no plugin command
    assert models.exit_code == 0, models.output
    assert models.stderr == "progface: plugin 'bad-commands' skipped: RuntimeError: boom\n"
    names = {row["name"] for row in json.loads(models.stdout)}
    assert "bicubic" in names and "bad-commands-method" not in names  # all or nothing
    assert plugins.failures["bad-commands"] == "RuntimeError: boom"
    result = runner.invoke(fresh_cli, ["half-command"])
    assert result.exit_code == 2 and "No such command 'half-command'" in result.output
    assert "skipped" not in result.output  # reported once
    assert runner.invoke(fresh_cli, ["hello-test"]).output == "hello from a plugin\n"
    listing = runner.invoke(fresh_cli, ["plugins"]).output
    assert listing.count("bad-commands") == 1
    assert "bad-commands  [failed to load: RuntimeError: boom]" in listing


@pytest.mark.parametrize("core", ["bench", "weights", "plugins"])
def test_a_plugin_cannot_replace_a_core_command(register_plugin, fresh_cli, core):
    class Taker:
        @hookimpl
        def register_commands(self, cli):
            cli.add_command(_command("taker-extra", "extra"))
            cli.add_command(_command(core, "taken"))

    register_plugin(Taker(), "taker-plugin")
    fresh_cli.load_plugin_commands()
    assert plugins.failures["taker-plugin"] == (
        f"DuplicateNameError: command {core!r} is a core progface command; plugin "
        "'taker-plugin' cannot replace it"
    )
    assert "taker-extra" not in fresh_cli.commands  # all or nothing
    result = CliRunner().invoke(fresh_cli, [core, "--help"])
    assert result.exit_code == 0 and "taken" not in result.output
    assert fresh_cli.commands[core].callback.__module__.startswith("progface.cli")


def test_two_plugins_with_one_command_name_are_both_named(register_plugin, fresh_cli):
    class Second:
        @hookimpl
        def register_commands(self, cli):
            cli.add_command(_command("hello-test", "the second"))

    register_plugin(HelloCommand(), "hello-plugin")
    register_plugin(Second(), "second-plugin")
    result = CliRunner().invoke(fresh_cli, ["hello-test"])
    assert result.stdout == "hello from a plugin\n", result.output
    assert plugins.failures["second-plugin"] == (
        "DuplicateNameError: command 'hello-test' is registered by both plugin 'hello-plugin' "
        "and plugin 'second-plugin'"
    )


def test_strict_mode_makes_a_command_clash_fatal(register_plugin, fresh_cli, monkeypatch):
    class Taker:
        @hookimpl
        def register_commands(self, cli):
            cli.add_command(_command("bench", "taken"))

    register_plugin(Taker(), "taker-plugin")
    monkeypatch.setenv("PROGFACE_STRICT_PLUGINS", "1")
    with pytest.raises(DuplicateNameError, match="'bench' is a core progface command"):
        fresh_cli.load_plugin_commands()


def test_broken_plugin_hook_is_skipped_and_reported(register_plugin, capsys):
    class Broken:
        @hookimpl
        def register_methods(self, register):
            raise RuntimeError("boom")

    register_plugin(Broken(), "broken-plugin")
    regs = plugins.registries()
    assert "bicubic" in regs["methods"]
    assert "broken-plugin" in plugins.failures
    assert "plugin 'broken-plugin' skipped: RuntimeError: boom" in capsys.readouterr().err


def test_register_wrong_spec_type_is_reported(register_plugin):
    class Wrong:
        @hookimpl
        def register_methods(self, register):
            register(MetricSpec("not-a-method", fn=None))

    register_plugin(Wrong(), "wrong-plugin")
    plugins.registries()
    assert "expects MethodSpec" in plugins.failures["wrong-plugin"]


def test_strict_mode_makes_failures_fatal(register_plugin, monkeypatch):
    class Broken:
        @hookimpl
        def register_methods(self, register):
            raise RuntimeError("boom")

    register_plugin(Broken(), "broken-plugin")
    monkeypatch.setenv("PROGFACE_STRICT_PLUGINS", "1")
    with pytest.raises(RuntimeError, match="boom"):
        plugins.registries()


PYPROJECT = """
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "progface-throwaway"
version = "1.2.3"

[tool.setuptools]
py-modules = ["progface_throwaway", "progface_throwaway_broken"]

[project.entry-points.progface]
throwaway = "progface_throwaway"
broken = "progface_throwaway_broken"
"""

MODULE = """
import click

from progface import hookimpl
from progface.registry import MethodSpec


@hookimpl
def register_methods(register):
    register(MethodSpec("throwaway-up", load=lambda **kw: None, description="from an entry point"))


@click.command(name="throwaway-hello")
def hello():
    \"\"\"Say hello.\"\"\"
    click.echo("hello from throwaway")


@hookimpl
def register_commands(cli):
    cli.add_command(hello)
"""


def _install(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "progface_throwaway.py").write_text(textwrap.dedent(MODULE))
    (src / "progface_throwaway_broken.py").write_text("raise ImportError('missing dependency x')\n")
    target = tmp_path / "site"
    done = pip_install_target(src, target)
    assert done.returncode == 0, done.stderr
    return target


REPO = Path(__file__).resolve().parents[2]


def _progface(target, *args, **env):
    # this checkout's progface, whatever one is installed in the environment
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(REPO)]), **env}
    return subprocess.run(
        [sys.executable, "-m", "progface", *args], capture_output=True, text=True, env=environ
    )


def test_installed_entry_point_is_discovered(tmp_path):
    target = _install(tmp_path)
    proc = _progface(target, "plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["throwaway"]["registered"] == {
        "methods": ["throwaway-up"],
        "commands": ["throwaway-hello"],
    }
    assert rows["throwaway"]["version"] == "1.2.3"
    assert rows["broken"]["error"] == "ImportError: missing dependency x"
    assert "plugin 'broken' skipped: ImportError: missing dependency x" in proc.stderr
    # the rest keeps working: the built-ins and the good plugin
    models = _progface(target, "models", "--json")
    names = {r["name"] for r in json.loads(models.stdout)}
    assert {"throwaway-up", "bicubic"} <= names
    hello = _progface(target, "throwaway-hello")
    assert hello.returncode == 0 and hello.stdout == "hello from throwaway\n", hello.stderr
    # an allow-list loads only the named third-party plugins
    only = _progface(target, "plugins", "--json", PROGFACE_LOAD_PLUGINS="throwaway")
    assert {r["name"] for r in json.loads(only.stdout)} >= {"throwaway"}
    assert "broken" not in {r["name"] for r in json.loads(only.stdout)}
    # strict mode: a broken plugin is fatal
    strict = _progface(target, "plugins", PROGFACE_STRICT_PLUGINS="1")
    assert strict.returncode != 0 and "missing dependency x" in strict.stderr


def test_disabled_plugins_built_ins_included(tmp_path):
    from PIL import Image

    target = _install(tmp_path)
    env = {"PROGFACE_DISABLED_PLUGINS": "progface.builtin.baselines, throwaway,nosuch"}
    proc = _progface(target, "plugins", "--json", **env)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["progface.builtin.baselines"] == {
        "name": "progface.builtin.baselines",
        "disabled": True,
    }
    assert rows["throwaway"] == {"name": "throwaway", "disabled": True}
    assert rows["broken"]["error"] == "ImportError: missing dependency x"  # the rest as before
    assert "methods" in rows["progface.builtin.classical"]["registered"]
    registered = [n for r in rows.values() for ns in r.get("registered", {}).values() for n in ns]
    assert "vdsr" not in registered and "throwaway-up" not in registered
    assert "PROGFACE_DISABLED_PLUGINS names no installed plugin: nosuch" in proc.stderr
    text = _progface(target, "plugins", **env).stdout
    assert "progface.builtin.baselines  [disabled by PROGFACE_DISABLED_PLUGINS]" in text
    models = {r["name"] for r in json.loads(_progface(target, "models", "--json", **env).stdout)}
    assert "bicubic" in models and not {"vdsr", "urdgn", "throwaway-up"} & models
    hello = _progface(target, "throwaway-hello", **env)
    assert hello.returncode == 2 and "No such command 'throwaway-hello'" in hello.stderr
    faces = tmp_path / "faces"
    faces.mkdir()
    Image.new("RGB", (64, 64), (90, 120, 200)).save(faces / "a.png")
    up = _progface(target, "upscale", str(faces), "-o", str(tmp_path / "out"), "--method", "vdsr",
                   **env)  # fmt: skip
    assert up.returncode == 1 and "Error: unknown method 'vdsr'" in up.stderr, up.stderr


@pytest.mark.parametrize(
    ("folder", "plugin", "method"),
    [
        ("progface-example", "example", "sharp-bicubic"),
        ("template", "myplugin", "myplugin-nearest"),
    ],
)
def test_example_plugin_packages_install_and_register(tmp_path, folder, plugin, method):
    target = tmp_path / "site"
    src = tmp_path / folder  # a copy: building in place would leave build/ in the repository
    shutil.copytree(Path(__file__).resolve().parents[2] / "plugins" / folder, src)
    done = pip_install_target(src, target)
    assert done.returncode == 0, done.stderr
    rows = {r["name"]: r for r in json.loads(_progface(target, "plugins", "--json").stdout)}
    assert method in rows[plugin]["registered"]["methods"]


def test_datasets_build_from_registry(tmp_path):
    from PIL import Image

    Image.new("RGB", (128, 128), (10, 20, 30)).save(tmp_path / "x.png")
    dataset = plugins.get("datasets", "folder").build(tmp_path)
    item = dataset[0]
    assert len(dataset) == 1 and item["lr"].shape == (3, 16, 16)
    assert abs(float(item["hr"][0].mean()) - 10 / 255) < 1e-6


def test_models_lists_the_rest_when_a_plugin_count_fails(register_plugin):
    def boom():
        raise RuntimeError("no config")

    class BadCount:
        @hookimpl
        def register_methods(self, register):
            register(MethodSpec("bad-count", load=lambda **kw: None, count_parameters=boom))

    register_plugin(BadCount(), "bad-count-plugin")
    result = CliRunner().invoke(cli, ["models", "--json"])
    assert result.exit_code == 0, result.output
    assert "'bad-count' (plugin 'bad-count-plugin'): count_parameters failed" in result.output
