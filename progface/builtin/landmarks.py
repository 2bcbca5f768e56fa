"""Built-in plugin: landmark heatmap sources (fan, fan-distilled, landmarks, dlib68), the
``landmark-nme`` metric and the ``distill`` training recipe (the commands ``distill`` and
``landmarks`` are core commands, :mod:`progface.cli.landmarks`; the importers are in
``progface.weights.importers``)."""

from __future__ import annotations

from progface.hookspecs import hookimpl
from progface.registry import HeatmapSourceSpec, MetricSpec, RecipeSpec
from progface.weights.landmarks import FAN4_STATE_DICT, FAN_DISTILLED_SHIPPED


def _fan(weights=None, device="cpu"):
    from progface.landmarks.sources import FanSource

    return FanSource.load(weights, device)


def _fan_distilled(weights=None, device="cpu", work_size=None, shape_prior=True):
    from progface.landmarks.sources import FanDistilledSource

    return FanDistilledSource.load(weights, device, work_size, shape_prior)


def _fan_distilled_raw(weights=None, device="cpu", work_size=None):
    return _fan_distilled(weights, device, work_size, shape_prior=False)


def _landmarks(points=None, sigma=1.5, points_size=128, device="cpu"):
    from progface.landmarks.sources import LandmarkHeatmaps

    return LandmarkHeatmaps(points, sigma=sigma, points_size=points_size)


def _dlib68(device="cpu", **options):
    from progface.landmarks.sources import Dlib68Source

    return Dlib68Source(**options)


def _count_fan() -> int:
    from progface.landmarks.fan import NUM_PARAMETERS

    return NUM_PARAMETERS


def _count_fan_distilled() -> int:
    from progface.landmarks.fan_distilled import NUM_PARAMETERS

    return NUM_PARAMETERS


def landmark_nme(sr, hr):
    """Per-image NME (percent of the image side) between the landmarks the shipped
    ``fan-distilled`` finds on the SR faces and on the HR faces, both looked at on 64-px copies:
    the network locates landmarks far better there than at 128 px (its model card), so the
    figure measures the faces, not the network's blind spot. The source's shape prior keeps
    both landmark sets where an aligned face's can be: gross misses do not swamp the mean, and
    a large displacement (a face shifted out of alignment) reads smaller than it is."""
    from progface.landmarks.evaluate import predict_landmarks
    from progface.landmarks.sources import FanDistilledSource
    from progface.metrics.nme import nme

    key = str(sr.device)
    if key not in _NME_SOURCES:
        _NME_SOURCES[key] = FanDistilledSource.load(device=key, work_size=NME_WORK_SIZE)
    source = _NME_SOURCES[key]
    pred = predict_landmarks(source, sr.clamp(0, 1))
    ref = predict_landmarks(source, hr.clamp(0, 1))
    return 100 * nme(pred, ref, "size", sr.shape[-1])


_NME_SOURCES: dict = {}
NME_WORK_SIZE = 64


@hookimpl
def register_heatmap_sources(register):
    register(
        HeatmapSourceSpec(
            "fan",
            _fan,
            "FAN-4 (face-alignment 2D-FAN-4) at 256 px on a bilinear upsampling; the paper's teacher",
            weights=FAN4_STATE_DICT,
            count_parameters=_count_fan,
            aliases=("fan4",),
        )
    )
    register(
        HeatmapSourceSpec(
            "fan-distilled",
            _fan_distilled,
            "the paper's distilled FAN at the input resolution with its aligned-face shape "
            "prior (shipped weights)",
            weights=FAN_DISTILLED_SHIPPED,
            count_parameters=_count_fan_distilled,
            aliases=("fan_distilled",),
        )
    )
    register(
        HeatmapSourceSpec(
            "fan-distilled-raw",
            _fan_distilled_raw,
            "the distilled FAN's own heatmaps, no shape prior (as the paper runs it)",
            weights=FAN_DISTILLED_SHIPPED,
            count_parameters=_count_fan_distilled,
        )
    )
    register(
        HeatmapSourceSpec(
            "landmarks",
            _landmarks,
            "Gaussian heatmaps rendered from known coordinates (CSV, .pts or a tensor)",
            count_parameters=lambda: 0,
        )
    )
    register(
        HeatmapSourceSpec(
            "dlib68",
            _dlib68,
            "dlib's 68-point shape predictor rendered as Gaussians (extra progface[dlib])",
            count_parameters=lambda: 0,
        )
    )


@hookimpl
def register_metrics(register):
    register(
        MetricSpec(
            "landmark-nme",
            landmark_nme,
            "landmark error of SR vs HR faces (fan-distilled at 64 px), % of the image side",
            higher_is_better=False,
            unit="%",
        )
    )


def _build_distill(cfg, ctx, **objects):
    from progface.train.recipes.distill import build

    return build(cfg, ctx, **objects)


def _distill_datasets(cfg):
    from progface.train.recipes.distill import distill_datasets

    return distill_datasets(cfg)


@hookimpl
def register_recipes(register):
    from progface.train.recipes.distill import PRESETS, DistillOptions

    register(
        RecipeSpec(
            name="distill",
            build=_build_distill,
            options=DistillOptions,
            presets=PRESETS,
            datasets=_distill_datasets,
            description="distil the 321k-parameter FAN from a teacher heatmap source",
        )
    )
