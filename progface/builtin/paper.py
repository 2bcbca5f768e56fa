"""Built-in plugin: the paper's method (Kim et al., BMVC 2019).

Registers the generator ``progressive``, the method ``ours`` (step 3, alpha 1), the losses
(``pixel``, ``perceptual``, ``adversarial``, ``wgan-gp``, ``heatmap``, ``attention``) and the
training recipe ``progressive``.
"""

from __future__ import annotations

from progface.hookspecs import hookimpl
from progface.registry import GeneratorSpec, LossSpec, MethodSpec, RecipeSpec
from progface.weights import WeightSpec

# Trained here (model card: progface/weights/pfsr_generator_psnr.md): the paper's generator
# with the pixel + facial attention + heatmap terms (a PSNR-oriented variant of its objective)
OURS_WEIGHTS = WeightSpec(
    filename="pfsr_generator_psnr.safetensors",
    sha256="c3439ca9027e5f1cac200f4045af003e068771e6252c2d297d3eb275032dd51d",
    licence="progface-trained on CelebA, UTKFace and Helen faces: research and non-commercial "
    "use only",
    shipped=True,
    config={"architecture": "progressive-generator", "step": 3, "alpha": 1.0},
)
GENERATOR_PARAMETERS = 8_969_097


def _build_generator(channels=None, **config):
    """``channels``: the four block widths (default: the paper's 512, 256, 128, 64)."""
    from progface.models.progressive import ProgressiveConfig, ProgressiveGenerator

    if channels is not None:
        config["channels"] = tuple(channels)
    return ProgressiveGenerator(config=ProgressiveConfig(**config) if config else None)


def load_ours(weights=None, device="cpu"):
    """``ProgressiveSR`` at step 3 with the generator weights at ``weights``, at the alpha the
    file was exported with (1 unless a run was stopped inside step 3's fade-in: the network is
    run as it was trained)."""
    from progface.models.progressive import ProgressiveConfig, ProgressiveGenerator, ProgressiveSR
    from progface.weights import WeightsError, load_safetensors, load_state_checked, resolve

    path = resolve(OURS_WEIGHTS, weights)
    tensors, config = load_safetensors(path)
    if config.get("architecture", "progressive-generator") != "progressive-generator":
        raise WeightsError(
            f"{path}: holds {config['architecture']!r}, not the progressive generator"
        )
    if int(config.get("step", 3)) != 3:
        raise WeightsError(
            f"{path}: the generator was trained up to step {config['step']} "
            f"({16 * 2 ** int(config['step'])} px); method 'ours' needs step 3 (128 px)"
        )
    arch = ProgressiveConfig(channels=tuple(config.get("channels", (512, 256, 128, 64))))
    generator = ProgressiveGenerator(config=arch)
    load_state_checked(generator, tensors, path)  # keys and shapes
    alpha = float(config.get("alpha", 1.0))
    return ProgressiveSR(generator, step=3, alpha=alpha).to(device).eval()


@hookimpl
def register_generators(register):
    register(GeneratorSpec(
        name="progressive", build=_build_generator,
        description="progressive face SR generator (3 steps, 16 -> 32/64/128 px)",
    ))  # fmt: skip


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="ours", load=load_ours, weights=OURS_WEIGHTS, generator="progressive",
        description="Progressive Face SR (BMVC 2019), shipped PSNR-oriented weights; step 3",
        count_parameters=lambda: GENERATOR_PARAMETERS, aliases=("pfsr",),
        default_for=("upscale", "bench"),
    ))  # fmt: skip


# The paper's losses take images in the generator's [-1, 1], the range the authors' weights
# were set in (a recipe working in [0, 1] maps them; progface.losses.table).
GENERATOR_RANGE = (-1.0, 1.0)


def _loss(name, factory_path, description, needs=(), ranged=False, **spec):
    def build(**options):
        module_name, attr = factory_path.rsplit(":", 1)
        from importlib import import_module

        if ranged:
            options = {"input_range": GENERATOR_RANGE, **options}
        return getattr(import_module(module_name), attr)(**options)

    return LossSpec(name=name, build=build, description=description, needs=needs,
                    input_range=GENERATOR_RANGE, **spec)  # fmt: skip


@hookimpl
def register_losses(register):
    for spec in (
        _loss("pixel", "progface.losses.pixel:PixelLoss", "L1 or MSE pixel loss (kind=l1|mse)"),
        _loss("perceptual", "progface.losses.perceptual:PerceptualLoss",
              "sum of VGG16 feature MSEs (relu1_2..relu4_3), timm vgg16 (layers=, weights=)",
              ranged=True),
        _loss("adversarial", "progface.losses.adversarial:WGANGeneratorLoss",
              "WGAN generator term -mean D(sr) (needs a critic)", needs=("critic",),
              aliases=("wgan",)),
        _loss("wgan-gp", "progface.losses.adversarial:WGANGPDiscriminatorLoss",
              "the critic's objective: WGAN with gradient penalty 10 and drift 0.001 (not a "
              "generator term)", needs=("critic",)),
        _loss("heatmap", "progface.losses.heatmap:HeatmapLoss",
              "MSE of min-max normalised landmark heatmaps (needs the heatmap source)",
              needs=("source",), ranged=True),
        _loss("attention", "progface.losses.attention:AttentionLoss",
              "facial attention loss: max-heatmap weighted L1 (needs the heatmap source; "
              "landmarks=true: from labelled landmarks)", needs=("source",), ranged=True),
    ):  # fmt: skip
        register(spec)


def _build_recipe(cfg, ctx, **objects):
    from progface.train.recipes.progressive import build

    return build(cfg, ctx, **objects)


def _recipe_spec() -> RecipeSpec:
    from progface.train.recipes.progressive import DEFAULT_LOSSES, PRESETS, ProgressiveOptions

    return RecipeSpec(
        name="progressive", build=_build_recipe, options=ProgressiveOptions, presets=PRESETS,
        method="ours", losses=DEFAULT_LOSSES,
        preset_rows={"default": "table2-full", "paper": "table2-full"},
        description="the paper's progressive GAN training with attention and heatmap losses",
    )  # fmt: skip


@hookimpl
def register_recipes(register):
    register(_recipe_spec())
