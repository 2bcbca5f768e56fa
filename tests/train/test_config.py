from __future__ import annotations

import pytest

from progface.train.config import ConfigError, load_config, parse_override, read_toml, to_toml
from tests.train.toy_recipe import TOY_SPEC, ToyOptions


def test_defaults_preset_file_and_overrides(tmp_path):
    cfg = load_config(spec=TOY_SPEC)
    assert cfg.recipe == "toy" and cfg.options == ToyOptions() and cfg.loop.batch_size == 16
    path = tmp_path / "run.toml"
    path.write_text('preset = "fast"\nseed = 3\n[loop]\nlog_every = 7\n[options]\niterations = 9\n')
    cfg = load_config(path, ["options.lr=0.5", "data.train=/x/y", "loop.bf16=true"], spec=TOY_SPEC)
    assert cfg.preset == "fast" and cfg.seed == 3
    assert cfg.loop.batch_size == 2  # from the preset
    assert cfg.loop.log_every == 7 and cfg.options.iterations == 9  # from the file
    assert cfg.options.lr == 0.5 and cfg.data.train == "/x/y" and cfg.loop.bf16 is True


def test_toml_round_trip(tmp_path):
    cfg = load_config(overrides=["options.lr=3e-4", "out=runs/a b"], spec=TOY_SPEC)
    text = to_toml({"recipe": "toy", "nested": {"x": [1, 2.5], "s": 'q"uote'}})
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert read_toml(path) == {"recipe": "toy", "nested": {"x": [1, 2.5], "s": 'q"uote'}}
    from progface.train.config import config_dict

    path.write_text(to_toml(config_dict(cfg)))
    again = load_config(path, spec=TOY_SPEC)
    assert again == cfg


def test_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"loop\.batchsize.*did you mean 'loop\.batch_size'"):
        load_config(overrides=["loop.batchsize=4"], spec=TOY_SPEC)
    with pytest.raises(ConfigError, match=r"loop\.batch_size: expected int"):
        load_config(overrides=["loop.batch_size=fast"], spec=TOY_SPEC)
    with pytest.raises(ConfigError, match="no preset 'nope'"):
        load_config(preset="nope", spec=TOY_SPEC)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("novalue")


def test_parse_override_values():
    assert parse_override("a.b=8") == (["a", "b"], 8)
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert parse_override("a=true") == (["a"], True)
    assert parse_override("a=hello") == (["a"], "hello")
    assert parse_override("a=1e-3") == (["a"], 1e-3)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("loop.batch_size=0", "loop.batch_size: must be at least 1, got 0"),
        ("loop.log_every=0", "loop.log_every: must be at least 1, got 0"),
        ("loop.keep_checkpoints=-1", "loop.keep_checkpoints: must be at least 0, got -1"),
        ("data.workers=-2", "data.workers: must be at least 0, got -2"),
        ('data.crop="square"', "data.crop: 'square' is not one of '', 'none', 'center', 'celeba'"),
        ('loop.device="tpu"', "loop.device: 'tpu' is not one of 'auto', 'cpu', 'cuda'"),
    ],
)
def test_values_are_checked_when_the_config_is_resolved(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert str(err.value) == message


def test_recipe_options_are_checked_too():
    from progface import plugins

    spec = plugins.get("recipes", "vdsr")
    with pytest.raises(ConfigError, match=r"^options.iterations: must be at least 1, got 0$"):
        load_config(None, ["options.iterations=0"], spec=spec)
    with pytest.raises(ConfigError, match=r"^options.in_chans: 2 is not one of 1, 3$"):
        load_config(None, ["options.in_chans=2"], spec=spec)
