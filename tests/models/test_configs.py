"""Every model takes ``config: XConfig | None`` plus keyword overrides; defaults live only in the
config dataclass."""

from __future__ import annotations

import dataclasses

import pytest

from progface.landmarks.fan import FAN, FANConfig
from progface.landmarks.fan_distilled import FanDistilled, FanDistilledConfig
from progface.models.fsrnet import (
    FSRGANDiscriminator,
    FSRGANDiscriminatorConfig,
    FSRNet,
    FSRNetConfig,
)
from progface.models.progressive import (
    ProgressiveConfig,
    ProgressiveDiscriminator,
    ProgressiveGenerator,
)
from progface.models.urdgn import (
    URDGNConfig,
    URDGNDiscriminator,
    URDGNDiscriminatorConfig,
    URDGNGenerator,
)
from progface.models.vdsr import VDSR, VDSRConfig

SMALL_PROGRESSIVE = {"channels": (8, 8, 8, 8), "d_hidden": 8}

# model, its config type, a base (small where the defaults are slow), one field override
CASES = [
    (VDSR, VDSRConfig, {"depth": 4, "width": 8}, {"in_chans": 1}),
    (URDGNGenerator, URDGNConfig, {"widths": (4, 8, 8, 8)}, {"widths": (4, 4, 8, 8)}),
    (URDGNDiscriminator, URDGNDiscriminatorConfig, {"size": 32, "hidden": 8}, {"hidden": 16}),
    (FSRNet, FSRNetConfig, {"size": 32}, {"num_parsing": 0}),
    (FSRGANDiscriminator, FSRGANDiscriminatorConfig, {"widths": (4, 8)}, {"widths": (4, 4)}),
    (ProgressiveGenerator, ProgressiveConfig, SMALL_PROGRESSIVE, {"d_hidden": 4}),
    (ProgressiveDiscriminator, ProgressiveConfig, SMALL_PROGRESSIVE, {"d_hidden": 4}),
    (FAN, FANConfig, {"num_modules": 1, "features": 16, "hourglass_depth": 2}, {"num_modules": 2}),
    (FanDistilled, FanDistilledConfig, {"widths": (8, 8)}, {"num_landmarks": 5}),
]
IDS = [c[0].__name__ for c in CASES]


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def shapes(model) -> dict:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize(("model", "config_type"), [c[:2] for c in CASES], ids=IDS)
def test_no_arguments_is_the_default_config(model, config_type) -> None:
    bare, explicit = model(), model(config_type())
    assert bare.config == explicit.config == config_type()
    assert n_params(bare) == n_params(explicit)
    assert shapes(bare) == shapes(explicit)


@pytest.mark.parametrize(("model", "config_type", "base", "override"), CASES, ids=IDS)
def test_keywords_equal_config_and_override_one_field(model, config_type, base, override) -> None:
    config = config_type(**base)
    by_keywords, by_config = model(**base), model(config)
    assert by_keywords.config == by_config.config == config
    assert shapes(by_keywords) == shapes(by_config)

    changed = model(config, **override)
    assert changed.config == dataclasses.replace(config, **override)
    (name,) = override
    for field in dataclasses.fields(config_type):
        if field.name != name:
            assert getattr(changed.config, field.name) == getattr(config, field.name)
    assert config == config_type(**base)  # the given config is not modified


@pytest.mark.parametrize(("model", "config_type"), [c[:2] for c in CASES], ids=IDS)
def test_unknown_keyword_raises(model, config_type) -> None:
    with pytest.raises(TypeError, match=r"bogus_field") as info:
        model(bogus_field=1)
    message = str(info.value)
    assert model.__name__ in message
    for field in dataclasses.fields(config_type):
        assert field.name in message


def test_wrong_config_type_and_lists() -> None:
    with pytest.raises(TypeError, match="VDSR: config must be a VDSRConfig"):
        VDSR(FANConfig())  # type: ignore[arg-type]
    # weight-file configs come from JSON: lists become the dataclass's tuples
    assert URDGNGenerator(widths=[4, 8, 8, 8]).config.widths == (4, 8, 8, 8)
