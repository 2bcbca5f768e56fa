"""The core command table and the shared option types of the command line."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from progface.cli import CORE_COMMANDS, ProgfaceGroup, cli
from progface.cli.options import CROPS, FLOATS, INTS, NAME_VALUE, NAMES


@pytest.mark.parametrize("name", sorted(CORE_COMMANDS))
def test_the_table_names_each_command_and_its_help(name):
    command = ProgfaceGroup("progface").commands[name]  # imports the command's module
    assert isinstance(command, click.Command) and command.name == name
    table_help = click.Command(name, help=CORE_COMMANDS[name][1])
    for limit in (30, 45, 80, 10_000):  # any terminal width
        assert table_help.get_short_help_str(limit) == command.get_short_help_str(limit), (
            f"CORE_COMMANDS[{name!r}]: copy the first paragraph of the command's help"
        )


def test_root_help_is_what_click_shows_with_every_command_imported():
    group = ProgfaceGroup("progface", help=cli.help, epilog=cli.epilog)
    before = CliRunner().invoke(group, ["--help"], terminal_width=100).output
    assert group.commands.loaded == {}  # nothing imported for --help
    for name in CORE_COMMANDS:
        group.commands[name]
    after = CliRunner().invoke(group, ["--help"], terminal_width=100).output
    assert before == after and "Commands:" in before


def test_core_commands_are_not_registered_by_plugins():
    from progface import plugins

    plugins.load_plugins()
    impls = plugins.pm.hook.register_commands.get_hookimpls()
    assert [i.plugin_name for i in impls if i.plugin_name in plugins.DEFAULT_PLUGINS] == []


def test_weights_import_lives_in_the_weights_group():
    from progface.cli.weights import import_command, weights

    assert weights.commands == {"dir": weights.commands["dir"], "import": import_command}
    assert cli.commands["weights"] is weights


def test_crop_choices_are_the_crop_policies():
    from progface.data.crop import CROP_POLICIES

    assert tuple(CROPS.choices) == CROP_POLICIES


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        (NAMES, "ours, vdsr,,bicubic ", ("ours", "vdsr", "bicubic")),
        (NAMES, "", ()),
        (INTS, "64,128", (64, 128)),
        (FLOATS, "0.75,.25", (0.75, 0.25)),
        (NAME_VALUE, "ours=a=b.safetensors", ("ours", "a=b.safetensors")),
    ],
)
def test_option_types_give_python_values(kind, text, value):
    assert kind.convert(text, None, None) == value


def test_commands_receive_typed_values(monkeypatch):
    import progface.jobs.bench

    seen = {}

    def run_bench(methods, data, **kw):
        seen.update(methods=methods, data=data, **kw)
        raise RuntimeError("stop here")

    monkeypatch.setattr(progface.jobs.bench, "run_bench", run_bench)
    args = ["bench", "--methods", "ours,bicubic", "--data", "d", "--weights", "ours=w.st",
            "--metrics", "psnr, ssim"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.output.strip().endswith("Error: stop here"), result.output
    assert seen["methods"] == ["ours", "bicubic"] and seen["metrics"] == ("psnr", "ssim")
    assert seen["weights"] == {"ours": "w.st"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["landmarks", "eval", "--source", "fan", "--data", "d", "--sizes", "64,x"],
         "Invalid value for '--sizes': expected comma-separated integers, got '64,x'"),
        (["distill", "--size-probs", "0.5,half"],
         "Invalid value for '--size-probs': expected comma-separated numbers, got '0.5,half'"),
        (["bench", "--data", "d", "--weights", "ours"],
         "Invalid value for '--weights': expected NAME=PATH, got 'ours'"),
        (["bench", "--data", "d", "--weights", "ours=a", "--weights", "ours=b"],
         "Invalid value for '--weights': more than one file for ours"),
        (["bench", "--data", "d", "--methods", " , "], "give --methods and/or --ablation"),
    ],
)  # fmt: skip
def test_bad_option_values_name_the_option(args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1] == f"Error: {message}"


def test_names_moved_out_of_the_package_module_still_import():
    from progface.cli import DEVICES, friendly_errors
    from progface.cli.errors import friendly_errors as moved
    from progface.cli.options import DEVICES as devices

    assert friendly_errors is moved and DEVICES is devices


def test_clearing_the_commands_forgets_added_ones_and_keeps_the_core_table():
    from progface.cli import CORE_COMMANDS, CoreCommands

    commands = CoreCommands(CORE_COMMANDS)
    commands["extra"] = click.Command("extra")
    _ = commands["models"]  # loaded on access
    commands.clear()  # MutableMapping's popitem loop would never end on the core names
    assert "extra" not in commands and set(commands) == set(CORE_COMMANDS)
    assert commands.loaded == {}
