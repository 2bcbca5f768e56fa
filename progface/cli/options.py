"""Option types shared by the commands, each defined once.

Values reach the commands (and the job functions behind them) as Python values: a comma list
is a tuple of names, integers or numbers, ``NAME=PATH`` is a ``(name, path)`` pair; no command
splits strings itself. Importing this module imports neither torch nor any plugin (the crop
names are the ones of ``progface.data.crop.CROP_POLICIES``; a test keeps the two equal).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from progface.jobs.runtime import PRECISIONS, RUNTIMES

CROPS = click.Choice(["celeba", "center", "none"])
DEVICES = click.Choice(["auto", "cpu", "cuda"])
PRECISION = click.Choice(PRECISIONS)


class CommaList(click.ParamType):
    """``a,b,c`` -> a tuple of items made by ``item`` (``str``, ``int``, ``float``); blank
    items are dropped, so ``""`` is the empty tuple."""

    name = "text"  # the metavar the help shows (TEXT), as for any string option

    def __init__(self, item: Callable[[str], Any] = str, what: str = "names") -> None:
        self.item = item
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, (tuple, list)):  # a default given as a sequence, or converted
            return tuple(value)
        try:
            return tuple(self.item(v.strip()) for v in str(value).split(",") if v.strip())
        except ValueError:
            self.fail(f"expected comma-separated {self.what}, got {value!r}", param, ctx)


NAMES = CommaList(str, "names")
INTS = CommaList(int, "integers")
FLOATS = CommaList(float, "numbers")


class NameValue(click.ParamType):
    """``NAME=VALUE`` -> ``(name, value)``; the name must not be empty."""

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, tuple):
            return value
        name, sep, rest = str(value).partition("=")
        if not sep or not name.strip():
            metavar = param.metavar if param is not None and param.metavar else "NAME=VALUE"
            self.fail(f"expected {metavar}, got {value!r}", param, ctx)
        return name.strip(), rest


NAME_VALUE = NameValue()


def json_option():
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def device_option():
    return click.option("--device", type=DEVICES, default="auto", show_default=True)


def crop_option(default: str):
    return click.option("--crop", type=CROPS, default=default, show_default=True)


def batch_size_option():
    return click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)


def precision_option(default: str, help: str):
    return click.option(
        "--precision", type=PRECISION, default=default, show_default=True, help=help
    )


def runtime_option():
    return click.option(
        "--runtime", type=click.Choice(RUNTIMES), default="torch", show_default=True,
        help="torch-compile: the folded network through torch.compile (5-10 s to compile, "
        "then 1.15-1.25x faster: pays off from a few thousand faces). onnxruntime: run the "
        "network's ONNX export "
        "(made once, cached; fp32; extra progface[onnx]).",
    )  # fmt: skip
