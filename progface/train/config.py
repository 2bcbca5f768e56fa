"""Training configuration: TOML file -> dataclasses, ``--set key=value`` overrides, presets.

A run is described by one :class:`TrainConfig`. Its values come, in this order (later wins),
from the dataclass defaults, the recipe's preset, the TOML file and the ``--set`` overrides::

    recipe = "progressive"       # a registered recipe (progface.registry.RecipeSpec)
    preset = "default"           # one of the recipe's presets
    out = "runs/celeba"          # run folder
    seed = 0

    [data]
    train = "/data/faces/train/celeba"
    val = "/data/faces/val/celeba_heldout_ids"

    [loop]
    batch_size = 16

    [options]                    # the recipe's own dataclass (e.g. ProgressiveOptions)
    iterations = [50000, 50000, 100000]

    [losses]                     # registered losses: name = weight (or one weight per step)
    pixel = 10.0
    heatmap = [0.0, 50.0, 50.0]

    [loss_options.pixel]         # keyword options of a loss's build
    kind = "mse"

Unknown keys and wrong types are errors that name the key (and the closest known keys).
``[losses]`` starts from the recipe's default table (``RecipeSpec.losses``); a key set in a
preset, the file or ``--set losses.NAME=WEIGHT`` adds or reweights a term (0 leaves it out).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key."""


def bounded(default: Any, *, min: float | None = None, choices: tuple | None = None) -> Any:  # noqa: A002
    """A dataclass field whose value :func:`from_dict` checks when the config is resolved:
    at least ``min`` (every item, for lists), or one of ``choices``. Recipe options use it too."""
    return field(default=default, metadata={"min": min, "choices": choices})


def _check_limits(f: dataclasses.Field, value: Any, where: str) -> None:
    low, choices = f.metadata.get("min"), f.metadata.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, choices))}")
    items = value if isinstance(value, (list, tuple)) else [value]
    if low is not None and any(isinstance(v, (int, float)) and v < low for v in items):
        raise ConfigError(f"{where}: must be at least {low}, got {value!r}")


@dataclass
class DataConfig:
    """Where the faces come from (``FaceFolder`` items: hr, x64, x32, lr in [0, 1])."""

    dataset: str = "folder"  # registered dataset: folder, celeba, ...
    train: str = ""  # root of the training faces; several roots joined by os.pathsep (":")
    val: str = ""  # root of held-out faces ("" = no validation)
    split: str = ""  # dataset split for training, e.g. "train" for celeba ("" = none)
    val_split: str = ""  # dataset split for validation, e.g. "val" for celeba
    crop: str = bounded(
        "", choices=("", "none", "center", "celeba")
    )  # crop policy: none, center, celeba ("" = the dataset's default)
    limit: int = bounded(0, min=0)  # use only the first N training faces (0 = all)
    val_limit: int = bounded(100, min=0)  # validate on the first N faces
    quantize: bool = True  # round every stage of the LR chain to 1/255 (PIL parity)
    workers: int = bounded(2, min=0)  # DataLoader worker processes per rank
    landmarks: bool = False  # items carry their labelled 68 landmarks (folder dataset)
    cache: bool = False  # keep decoded training faces in memory (uint8; needs quantize)


@dataclass
class LoopConfig:
    """The generic loop (``progface.train.loop``)."""

    batch_size: int = bounded(16, min=1)  # per process
    log_every: int = bounded(
        50, min=1
    )  # iterations between metrics-log lines (mean of the loss terms)
    val_every: int = bounded(
        5000, min=0
    )  # iterations between validation + sample grid (0 = only at the end)
    checkpoint_every: int = bounded(
        5000, min=0
    )  # iterations between checkpoints (0 = only at the end)
    keep_checkpoints: int = bounded(3, min=0)  # newest checkpoints kept (0 = all)
    stop_at: int = bounded(
        0, min=0
    )  # stop after this many iterations (0 = the recipe's total); --resume goes on
    grid_faces: int = bounded(8, min=1)  # rows in the sample grid
    device: str = bounded("auto", choices=("auto", "cpu", "cuda"))  # auto, cpu, cuda
    bf16: bool = False  # bfloat16 autocast for forward passes
    channels_last: bool = False  # channels_last memory format for models and images
    threads: int = bounded(0, min=0)  # torch.set_num_threads (0 = leave torch's default)
    progress: bool = True  # tqdm bar on a terminal, log lines otherwise


@dataclass
class TrainConfig:
    """One training run."""

    recipe: str = "progressive"
    preset: str = "default"
    out: str = "runs/progface"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    options: Any = None  # the recipe's options dataclass
    losses: dict = field(default_factory=dict)  # loss name -> weight or per-step weights
    loss_options: dict = field(default_factory=dict)  # loss name -> {option: value}


# --- overrides -------------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """A TOML value (``8``, ``1e-3``, ``true``, ``[1, 2]``, ``"x"``); bare words are strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"loop.batch_size=8"`` -> ``(["loop", "batch_size"], 8)``."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects KEY=VALUE (e.g. loop.batch_size=8), got {item!r}")
    return [k.strip() for k in key.strip().split(".")], parse_value(value.strip())


def set_dotted(tree: dict, keys: list[str], value: Any) -> None:
    for k in keys[:-1]:
        node = tree.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{'.'.join(keys)}: {k!r} is a value, not a section")
        tree = node
    tree[keys[-1]] = value


def merge(base: dict, update: Mapping) -> dict:
    """Recursive dict merge (``update`` wins); returns a new dict."""
    out = dict(base)
    for k, v in update.items():
        out[k] = merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


# --- dict <-> dataclasses ------------------------------------------------------------------


def to_dict(obj: Any) -> Any:
    """Dataclasses -> plain dicts/lists (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            if option is type(None) and value is None:
                return None
            try:
                return _coerce(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} is not a {hint}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool):
        if type(value) is not hint:
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
        return value
    return value


def from_dict(cls: type, data: Mapping, where: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types raise ConfigError.

    A key in ``cls.MOVED_KEYS`` (old key -> the table that replaced it, e.g. ``{"weights":
    "losses"}``) is an error naming the new keys."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    moved = getattr(cls, "MOVED_KEYS", {})  # old key -> the table that replaced it
    for key in data:
        if key in moved:
            raise ConfigError(_moved(where + key, moved[key], data[key]))
        if key not in names:
            close = difflib.get_close_matches(key, names, n=2, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(where + c) for c in close)}?" if close else ""
            raise ConfigError(f"unknown config key {where + key!r}{hint}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        name = f.name
        if name not in data:
            continue
        hint, value = hints[name], data[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where + name}: expected a table, got {value!r}")
            kwargs[name] = from_dict(hint, value, f"{where}{name}.")
        else:
            kwargs[name] = _coerce(value, hint, where + name)
            _check_limits(f, kwargs[name], where + name)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:  # a dataclass's own __post_init__ checks
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{where.rstrip('.') or 'config'}: {err}") from None


def _moved(key: str, table: str, value: Any) -> str:
    """One line naming the new keys of a key that moved to ``table``."""
    subkeys = list(value) if isinstance(value, Mapping) and value else ["NAME"]
    olds = ", ".join(f"{key}.{k}" for k in subkeys)
    news = ", ".join(f"{table}.{k}" for k in subkeys)
    return f"{olds}: moved to {news} (the [{table}] table, e.g. --set {table}.{subkeys[0]}=...)"


def check_losses(table: Any, where: str = "losses") -> None:
    """``[losses]`` values are numbers or lists of numbers (the recipe checks names and
    lengths when it builds the terms)."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table of NAME = weight, got {table!r}")
    for name, value in table.items():
        items = value if isinstance(value, list) else [value]
        if not items or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in items):
            raise ConfigError(
                f"{where}.{name}: expected a weight (a number) or a list of per-step weights, "
                f"got {value!r}"
            )


# --- TOML ------------------------------------------------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if v is None:
        raise ConfigError("TOML has no null; use a default value instead of None")
    raise ConfigError(f"cannot write {v!r} to TOML")


def to_toml(tree: Mapping, prefix: str = "") -> str:
    """Nested dicts of scalars and lists -> TOML text (tables after plain keys)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in tree.items() if not isinstance(v, Mapping)]
    for k, v in tree.items():
        if isinstance(v, Mapping):
            name = f"{prefix}{k}"
            lines += ["", f"[{name}]", to_toml(v, name + ".").rstrip("\n")]
    return "\n".join(lines).strip("\n") + "\n"


def read_toml(path: str | Path) -> dict:
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML ({err})") from None


# --- resolution ------------------------------------------------------------------------------


def resolve(raw: Mapping, spec: Any) -> TrainConfig:
    """Defaults <- preset <- ``raw`` for recipe ``spec`` (a RecipeSpec) -> TrainConfig."""
    preset = raw.get("preset", "default")
    if preset != "default" and preset not in spec.presets:
        known = ", ".join(["default", *spec.presets])
        raise ConfigError(f"recipe {spec.name!r} has no preset {preset!r} (known: {known})")
    defaults = to_dict(TrainConfig(recipe=spec.name, options=spec.options()))
    defaults["losses"] = copy.deepcopy(getattr(spec, "losses", None) or {})
    tree = merge(merge(defaults, spec.presets.get(preset, {})), raw)
    tree["recipe"] = spec.name
    options = tree.pop("options")
    cfg = from_dict(TrainConfig, tree)
    cfg.options = from_dict(spec.options, options, "options.")
    if getattr(spec, "losses", None) is None and (cfg.losses or cfg.loss_options):
        given = ", ".join(f"losses.{k}" for k in cfg.losses) or "loss_options"
        raise ConfigError(
            f"{given}: recipe {spec.name!r} trains a fixed objective and takes no [losses] table"
        )
    check_losses(cfg.losses)
    for name, opts in cfg.loss_options.items():
        if not isinstance(opts, Mapping):
            raise ConfigError(f"loss_options.{name}: expected a table of options, got {opts!r}")
    return cfg


def load_config(
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    *,
    recipe: str | None = None,
    preset: str | None = None,
    spec: Any = None,
) -> TrainConfig:
    """Read a TOML file (optional), apply ``--set`` overrides and resolve the recipe's options.

    ``spec`` (a RecipeSpec) skips the registry lookup, e.g. for a recipe defined in a script.
    """
    raw = read_toml(path) if path is not None else {}
    if recipe is not None:
        raw["recipe"] = recipe
    if preset is not None:
        raw["preset"] = preset
    for item in overrides:
        keys, value = parse_override(item)
        set_dotted(raw, keys, value)
    if spec is None:
        from progface import plugins

        spec = plugins.get("recipes", raw.get("recipe", TrainConfig.recipe))
    return resolve(raw, spec)


def config_dict(cfg: TrainConfig) -> dict:
    """The resolved config as a plain dict (what the run folder and checkpoints record)."""
    return to_dict(cfg)
