from __future__ import annotations

import pytest

from progface.registry import (
    DuplicateNameError,
    MethodSpec,
    MetricSpec,
    Registry,
    UnknownNameError,
)


def _method(name, plugin="a", aliases=()):
    return MethodSpec(name=name, load=lambda **kw: None, aliases=aliases, plugin=plugin)


def test_get_by_name_and_alias():
    reg = Registry("methods")
    reg.add(_method("bicubic", aliases=("cubic",)))
    assert reg.get("bicubic").name == "bicubic"
    assert reg.get("cubic").name == "bicubic"
    assert "cubic" in reg and "nearest" not in reg
    assert reg.names() == ["bicubic"] and len(reg) == 1


def test_unknown_name_suggests_closest():
    reg = Registry("methods")
    for name in ("bilinear", "bicubic", "vdsr"):
        reg.add(_method(name))
    with pytest.raises(UnknownNameError) as err:
        reg.get("bilinaer")
    assert str(err.value).startswith("unknown method 'bilinaer'; did you mean 'bilinear'")
    with pytest.raises(UnknownNameError, match=r"known: bicubic, bilinear, vdsr\)"):
        reg.get("zzz")


def test_duplicate_names_both_plugins():
    reg = Registry("metrics")
    reg.add(MetricSpec("psnr", fn=None, plugin="first"))
    with pytest.raises(
        DuplicateNameError, match="'psnr' is registered by both plugin 'first' and plugin 'second'"
    ):
        reg.add(MetricSpec("psnr", fn=None, plugin="second"))


def test_alias_colliding_with_name_is_duplicate():
    reg = Registry("methods")
    reg.add(_method("bicubic", plugin="one"))
    with pytest.raises(DuplicateNameError, match="'bicubic'.*'one'.*'two'"):
        reg.add(_method("cubic2", plugin="two", aliases=("bicubic",)))
