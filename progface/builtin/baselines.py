"""Built-in plugin: the comparison methods of the paper's Table 3 (VDSR, URDGN, FSRNet, FSRGAN).

Registers the generators ``vdsr``, ``urdgn`` and ``fsrnet`` and the methods ``vdsr``, ``urdgn``,
``fsrnet`` and ``fsrgan``. No trained weights ship: a method loads the file given with
``--weights NAME=PATH`` (or one put in the cache under its WeightSpec's file name), made by
``progface train --recipe NAME``; without one, ``bench`` reports the method as not run.
"""

from __future__ import annotations

from dataclasses import fields
from importlib import import_module

from progface.hookspecs import hookimpl
from progface.registry import GeneratorSpec, MethodSpec
from progface.weights import WeightSpec

# architecture -> (module, network class, config dataclass); imported only when used
_NETS = {
    "vdsr": ("progface.models.vdsr", "VDSR", "VDSRConfig"),
    "urdgn": ("progface.models.urdgn", "URDGNGenerator", "URDGNConfig"),
    "fsrnet": ("progface.models.fsrnet", "FSRNet", "FSRNetConfig"),
}


def _classes(architecture: str):
    module, net, config = _NETS[architecture]
    mod = import_module(module)
    return getattr(mod, net), getattr(mod, config)


def build_vdsr(**config):
    return _classes("vdsr")[0](**config)


def build_urdgn(**config):
    return _classes("urdgn")[0](**config)


def build_fsrnet(**config):
    return _classes("fsrnet")[0](**config)


def build_from_config(architecture: str, config: dict):
    """The network a weight file's config describes (keys other than constructor args ignored)."""
    net, config_type = _classes(architecture)
    names = {f.name for f in fields(config_type)}
    kwargs = {k: v for k, v in config.items() if k in names}
    if isinstance(kwargs.get("widths"), list):  # JSON has no tuples
        kwargs["widths"] = tuple(kwargs["widths"])
    return net(**kwargs)


def _loader(method: str, architecture: str):
    def load(weights=None, device="cpu"):
        from progface.models.runner import load_trained_method

        return load_trained_method(
            weights, method=method, architecture=architecture,
            build=lambda config: build_from_config(architecture, config), device=device,
        )  # fmt: skip

    return load


def _count(architecture: str, **config):
    def count() -> int:
        return sum(p.numel() for p in _classes(architecture)[0](**config).parameters())

    return count


def _weights(method: str) -> WeightSpec:
    return WeightSpec(
        filename=f"{method}_celeba.safetensors",
        licence=f"not downloadable; make it with `progface train --recipe {method}`",
    )


@hookimpl
def register_generators(register):
    register(GeneratorSpec("vdsr", build_vdsr, "VDSR, 20 layers, on the bicubic 128 px face"))
    register(GeneratorSpec("urdgn", build_urdgn, "URDGN generator (author's released layout)"))
    register(GeneratorSpec("fsrnet", build_fsrnet, "FSRNet: coarse SR, prior hourglasses, fine SR"))


@hookimpl
def register_methods(register):
    rows = (
        ("vdsr", "vdsr", {}, "VDSR (Kim et al. 2016), RGB or Y per its weights"),
        ("urdgn", "urdgn", {}, "URDGN (Yu & Porikli 2016), MSE + 0.01 adversarial"),
        ("fsrnet", "fsrnet", {"num_parsing": 0}, "FSRNet (Chen et al. 2018), landmark priors"),
        ("fsrgan", "fsrnet", {"num_parsing": 0}, "FSRGAN: FSRNet + adversarial + perceptual"),
    )
    for method, architecture, config, description in rows:
        register(
            MethodSpec(
                name=method,
                load=_loader(method, architecture),
                description=description,
                weights=_weights(method),
                generator=architecture,
                count_parameters=_count(architecture, **config),
            )
        )
