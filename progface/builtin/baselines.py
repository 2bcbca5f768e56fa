"""Built-in plugin: the comparison methods of the paper's Table 3 (VDSR, URDGN, FSRNet, FSRGAN),
and the generic supervised recipe ``sr`` that trains any registered generator.

Registers the generators ``vdsr``, ``urdgn`` and ``fsrnet`` and the methods ``vdsr``, ``urdgn``,
``fsrnet`` and ``fsrgan``. VDSR and URDGN weights trained by progface ship inside the package
(``SHIPPED_SHA256``); FSRNet and FSRGAN load the file given with ``--weights NAME=PATH`` (or one
put in the cache under its WeightSpec's file name), made by ``progface train --recipe NAME``;
without one, ``bench`` reports the method as not run.
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
        from progface.weights import resolve

        if weights is None and method in SHIPPED_SHA256:
            weights = resolve(_weights(method))
        return load_trained_method(
            weights, method=method, architecture=architecture,
            build=lambda config: build_from_config(architecture, config), device=device,
        )  # fmt: skip

    return load


def _count(architecture: str, **config):
    def count() -> int:
        return sum(p.numel() for p in _classes(architecture)[0](**config).parameters())

    return count


# Weights that ship inside the package (progface/weights/<method>_faces.safetensors, model card
# progface/weights/baselines.md): method -> sha256. The others are made with `progface train`.
SHIPPED_SHA256 = {
    "vdsr": "03a2df6f945013a0d66ef6d1c1c45c9439290d465d49ba3c3a09fa1f2d6e0375",
    "urdgn": "f75a4ad1417fd15e0b7bb937779a73d4812a335f211dfddae9f3bd419365ad60",
}
SHIPPED_LICENCE = (
    "progface-trained on CelebA, UTKFace and Helen faces: research and non-commercial use only"
)


def _weights(method: str) -> WeightSpec:
    if method in SHIPPED_SHA256:
        return WeightSpec(
            filename=f"{method}_faces.safetensors",
            sha256=SHIPPED_SHA256[method],
            licence=SHIPPED_LICENCE,
            shipped=True,
        )
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


# --- training recipes --------------------------------------------------------------------------

SMALL_DATA = {"workers": 1, "val_limit": 50}
SMALL_LOOP = {"threads": 1, "val_every": 0, "checkpoint_every": 100, "log_every": 10}


def _vdsr_recipe(cfg, ctx, **objects):
    from progface.train.recipes.vdsr import VDSRRecipe

    return VDSRRecipe(cfg, ctx)


def _urdgn_recipe(cfg, ctx, **objects):
    from progface.train.recipes.urdgn import URDGNRecipe

    return URDGNRecipe(cfg, ctx)


def _fsr_recipe(method: str):
    def build(cfg, ctx, **objects):
        from progface.train.recipes.fsrnet import FSRNetRecipe

        return FSRNetRecipe(cfg, ctx, method=method, **objects)

    return build


def _options(module: str, name: str):
    return getattr(import_module(f"progface.train.recipes.{module}"), name)


@hookimpl
def register_recipes(register):
    from progface.registry import RecipeSpec
    from progface.train.recipes.sr import recipe_spec

    register(recipe_spec())
    register(
        RecipeSpec(
            name="vdsr",
            build=_vdsr_recipe,
            options=_options("vdsr", "VDSROptions"),
            presets={
                "default": {"loop": {"batch_size": 64}},
                "small": {
                    "options": {"iterations": 500, "lr_step": 200},
                    "loop": {**SMALL_LOOP, "batch_size": 16},
                    "data": SMALL_DATA,
                },
            },
            description="VDSR: Euclidean loss, SGD 0.1 with adjustable clipping, 41 px patches",
        )
    )
    register(
        RecipeSpec(
            name="urdgn",
            build=_urdgn_recipe,
            options=_options("urdgn", "URDGNOptions"),
            presets={
                "default": {"loop": {"batch_size": 64}},
                "small": {
                    "options": {"iterations": 200, "epoch_iterations": 1275},
                    "loop": {**SMALL_LOOP, "batch_size": 4},
                    "data": SMALL_DATA,
                },
            },
            description="URDGN: MSE + 0.01 BCE adversarial, RMSprop, 0.3/0.7 update skipping",
        )
    )
    # small: FSRNet costs ~92 GFLOPs per face and step (FSRGAN ~160 with D and VGG16)
    for method, options, small_iterations, what in (
        ("fsrnet", "FSRNetOptions", 180, "coarse + SR + prior MSE, RMSprop 2.5e-4"),
        ("fsrgan", "FSRGANOptions", 120, "FSRNet + 1e-3 adversarial + 1e-1 VGG16 perceptual"),
    ):
        register(
            RecipeSpec(
                name=method,
                build=_fsr_recipe(method),
                options=_options("fsrnet", options),
                presets={
                    "default": {"loop": {"batch_size": 14}},
                    "small": {
                        "options": {"iterations": small_iterations},
                        "loop": {**SMALL_LOOP, "batch_size": 4},
                        "data": SMALL_DATA,
                    },
                },
                description=f"{method.upper().replace('NET', 'Net')}: {what}",
            )
        )
