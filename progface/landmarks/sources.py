"""Heatmap sources: what turns faces into landmark heatmaps for the losses and the trainer.

A heatmap source is any object with ``num_landmarks`` and
``__call__(images: Tensor[B, 3, H, W] in [0, 1]) -> Tensor[B, N, h, w]`` (:class:`HeatmapSource`).
Gradients flow from the heatmaps to the images (the SR losses need them); the sources' own
weights are frozen and in eval mode. Built-in sources:

- ``fan``: FAN-4 (face-alignment's 2D-FAN-4) at 256 px on a bilinear upsampling, as the paper's
  teacher; heatmaps resized to the input resolution.
- ``fan-distilled``: the paper's 321k-parameter student, at the input resolution, with the
  shape prior stored in its weight file (:mod:`progface.landmarks.shape_prior`);
  ``fan-distilled-raw``: the same network without it, as the paper runs it.
- ``landmarks``: Gaussian heatmaps rendered from known coordinates (CSV, ``.pts``, tensor).
- ``dlib68``: dlib's 68-point shape predictor (extra ``progface[dlib]``), rendered as Gaussians.

A source that knows coordinates without looking at the image (``landmarks``) also offers
``heatmaps_from_points(points, size)``; distillation uses it on augmented labels.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from progface.landmarks.heatmaps import render_heatmaps, rescale_points

__all__ = [
    "Dlib68Source",
    "FanDistilledSource",
    "FanSource",
    "HeatmapSource",
    "LandmarkHeatmaps",
    "check_images",
]


@runtime_checkable
class HeatmapSource(Protocol):
    """Faces ``[B, 3, H, W]`` in [0, 1] -> landmark heatmaps ``[B, num_landmarks, h, w]``."""

    num_landmarks: int

    def __call__(self, images: Tensor) -> Tensor: ...


def check_images(images: Tensor, who: str) -> None:
    """Raise a clear error unless ``images`` is a float ``[B, 3, H, W]`` tensor."""
    if not isinstance(images, Tensor):
        raise TypeError(f"{who}: images must be a Tensor, got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"{who}: images must be [B, 3, H, W] in [0, 1], got {list(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"{who}: images must be floating point in [0, 1], got {images.dtype}")


def _freeze(module: nn.Module) -> nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


class _FrozenSource(nn.Module):
    """A network source that stays in eval mode (``train()`` cannot switch it back)."""

    def train(self, mode: bool = True) -> _FrozenSource:
        return super().train(False)


# --- fan-distilled -------------------------------------------------------------------------


class FanDistilledSource(_FrozenSource):
    """The distilled FAN (:class:`~progface.landmarks.fan_distilled.FanDistilled`) as a source.

    Heatmaps come out at the input resolution. With ``work_size`` (e.g. 64), faces of another
    size are resized to it first (antialiased bilinear, differentiable) and the heatmaps
    resized back: the network has a 13-px receptive field and finds landmarks far better on
    64-px faces than on 128-px ones. With ``prior`` (a
    :class:`~progface.landmarks.shape_prior.ShapePrior`), the output heatmaps are multiplied by
    it: for aligned faces, false peaks far from where a landmark can be are suppressed. Load
    weights with :meth:`load` (default: the shipped ``fan_distilled_landmarks.safetensors``,
    whose prior is used unless ``shape_prior=False``).
    """

    def __init__(
        self, model: nn.Module | None = None, work_size: int | None = None, prior=None
    ) -> None:
        super().__init__()
        from progface.landmarks.fan_distilled import FanDistilled

        self.net = _freeze(model if model is not None else FanDistilled())
        self.num_landmarks = self.net.num_landmarks
        self.work_size = work_size
        self.prior = prior
        self.eval()

    @classmethod
    def load(
        cls,
        weights: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        work_size: int | None = None,
        shape_prior: bool = True,
    ) -> FanDistilledSource:
        """Build from a converted safetensors file (None: the shipped default weights); the
        file's shape prior is applied when it has one and ``shape_prior`` is true."""
        from progface.landmarks.shape_prior import ShapePrior
        from progface.weights.landmarks import read_fan_distilled

        model, config = read_fan_distilled(weights)
        fitted = config.get("shape_prior") if shape_prior else None
        prior = ShapePrior.from_config(fitted) if fitted else None
        return cls(model, work_size, prior).to(device)

    def _resized(self, images: Tensor) -> Tensor:
        s = self.work_size
        if s is None or images.shape[-2:] == (s, s):
            return images
        # float32: the antialiased CPU kernel has no bfloat16 version (autocast outputs)
        return F.interpolate(images.float(), size=(s, s), mode="bilinear", antialias=True)

    def features(self, images: Tensor) -> Tensor:
        """Hidden features ``[B, 128, H, W]`` (the student's hint layer)."""
        check_images(images, "fan-distilled")
        return self.net.forward_features(images)

    def forward(self, images: Tensor) -> Tensor:
        """Faces ``[B, 3, H, W]`` in [0, 1] -> heatmaps ``[B, 68, H, W]`` (peaks near 1)."""
        check_images(images, "fan-distilled")
        heatmaps = self.net(self._resized(images))
        if heatmaps.shape[-2:] != images.shape[-2:]:
            heatmaps = F.interpolate(heatmaps, size=images.shape[-2:], mode="bilinear")
        return heatmaps if self.prior is None else self.prior.apply(heatmaps)


# --- fan (FAN-4) ---------------------------------------------------------------------------


class FanSource(_FrozenSource):
    """FAN-4 as the paper's teacher: faces of any size are resized bilinearly to 256 px (the
    authors' x4 bilinear upsampling of 64-px faces), FAN-4's last-stack 64x64 heatmaps are
    resized bilinearly to the input resolution."""

    def __init__(self, model: nn.Module | None = None, input_size: int = 256) -> None:
        super().__init__()
        from progface.landmarks.fan import FAN

        self.net = _freeze(model if model is not None else FAN())
        self.num_landmarks = self.net.num_landmarks
        self.input_size = input_size
        self.eval()

    @classmethod
    def load(cls, weights: str | os.PathLike[str] | None = None, device: str = "cpu") -> FanSource:
        """Build from face-alignment's ``.pth.tar`` state dict, its TorchScript ``.zip`` or a
        converted safetensors file (None: ``2DFAN4-11f355bf06.pth.tar`` from the cache)."""
        from progface.weights.landmarks import load_fan4

        return cls(load_fan4(weights)).to(device)

    def _upsample(self, images: Tensor) -> Tensor:
        s = self.input_size
        if images.shape[-2:] == (s, s):
            return images
        return F.interpolate(images, size=(s, s), mode="bilinear", align_corners=False)

    def features(self, images: Tensor) -> Tensor:
        """FAN-4's last-stack features ``[B, 256, 64, 64]`` (before its heatmap layer)."""
        check_images(images, "fan")
        return self.net.forward_features(self._upsample(images))[-1]

    def forward(self, images: Tensor) -> Tensor:
        """Faces ``[B, 3, H, W]`` in [0, 1] -> heatmaps ``[B, 68, H, W]`` (FAN-4's last stack)."""
        check_images(images, "fan")
        heatmaps = self.net(self._upsample(images))[-1]
        if heatmaps.shape[-2:] != images.shape[-2:]:
            heatmaps = F.interpolate(
                heatmaps, size=images.shape[-2:], mode="bilinear", align_corners=False
            )
        return heatmaps


# --- landmarks (rendered from coordinates) -----------------------------------------------


def read_points(path: str | os.PathLike[str]) -> dict[str, Tensor] | Tensor:
    """Landmarks from a file: ``landmarks68.csv`` (or a folder holding one) -> {file name:
    [68, 2]}; a 300-W ``.pts`` file -> [N, 2]."""
    from progface.data.landmarks_io import read_landmarks_csv, read_pts

    path = Path(path)
    if path.is_dir():
        path = path / "landmarks68.csv"
    if path.suffix.lower() == ".pts":
        return torch.from_numpy(read_pts(path)).float()
    table = read_landmarks_csv(path)
    return {name: torch.from_numpy(rec.points).float() for name, rec in table.items()}


class LandmarkHeatmaps:
    """Gaussian heatmaps rendered from known landmark coordinates.

    Args:
        points: the coordinates: a tensor ``[N, 2]`` or ``[B, N, 2]``, a mapping {image name:
            [N, 2]}, or a path (``landmarks68.csv``, a folder with one, or a ``.pts`` file).
        sigma: Gaussian standard deviation in pixels *at 64 px*; it scales with the output
            size (3 px at 128 for the default 1.5), so a blob covers the same part of the face
            at every resolution. 1.5 matches the width of the authors' distilled heatmaps.
        points_size: side of the images the coordinates refer to (128 for the face data).
        num_landmarks: landmarks per face (68).

    ``source(images)`` renders the stored points at the images' resolution (with a mapping,
    pass ``names=[...]``); ``heatmaps_from_points(points, size)`` renders given points.
    """

    def __init__(
        self,
        points: Tensor | Mapping[str, Tensor] | str | os.PathLike[str] | None = None,
        *,
        sigma: float = 1.5,
        points_size: int = 128,
        num_landmarks: int = 68,
    ) -> None:
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        if isinstance(points, (str, os.PathLike)):
            points = read_points(points)
        self.points = points
        self.sigma = float(sigma)
        self.points_size = int(points_size)
        self.num_landmarks = int(num_landmarks)

    def heatmaps_from_points(self, points: Tensor, size: int) -> Tensor:
        """Points ``[B, N, 2]`` in ``size``-px coordinates -> heatmaps ``[B, N, size, size]``."""
        return render_heatmaps(points, size, sigma=self.sigma * size / 64.0)

    def _stored_points(self, batch: int, names: list[str] | None, device) -> Tensor:
        if self.points is None:
            raise ValueError("landmarks source: no coordinates given (pass points= or a file)")
        if isinstance(self.points, Mapping):
            if names is None:
                raise ValueError("landmarks source built from a table needs names=[...] per image")
            missing = [n for n in names if n not in self.points]
            if missing:
                raise KeyError(f"landmarks source: no landmarks for {', '.join(missing[:5])}")
            pts = torch.stack([self.points[n] for n in names])
        else:
            pts = self.points if self.points.dim() == 3 else self.points.expand(batch, -1, -1)
        if pts.shape[0] != batch:
            raise ValueError(
                f"landmarks source: {pts.shape[0]} sets of points for a batch of {batch} images"
            )
        return pts.to(device=device, dtype=torch.float32)

    def __call__(self, images: Tensor, names: list[str] | None = None) -> Tensor:
        """Faces ``[B, 3, H, W]`` -> heatmaps ``[B, N, H, W]`` of the stored points (the image
        content is not looked at; only its size)."""
        check_images(images, "landmarks")
        h, w = images.shape[-2:]
        if h != w:
            raise ValueError(f"landmarks source: square images expected, got {h}x{w}")
        pts = self._stored_points(images.shape[0], names, images.device)
        pts = rescale_points(pts, self.points_size, h)
        return self.heatmaps_from_points(pts, h).to(images.dtype)


# --- dlib68 ---------------------------------------------------------------------------------

DLIB_MISSING = (
    "the dlib68 heatmap source needs dlib and its 68-point model: pip install 'progface[dlib]' "
    "(installs dlib-bin and face-recognition-models)"
)


def _import_dlib():
    try:
        import dlib
    except ImportError as err:
        raise ImportError(DLIB_MISSING) from err
    return dlib


def dlib_model_path() -> Path:
    """dlib's 68-point model inside the face-recognition-models package. The package is located
    without importing it: its ``__init__`` needs ``pkg_resources``, gone from new setuptools."""
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(DLIB_MISSING)
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / "shape_predictor_68_face_landmarks.dat"
        if path.is_file():
            return path
    raise ImportError(f"{DLIB_MISSING}; shape_predictor_68_face_landmarks.dat was not found")


class Dlib68Source:
    """dlib's 68-point shape predictor, rendered as Gaussian heatmaps (not differentiable).

    Faces are upsampled to ``detect_size`` px for dlib's HOG detector; when it finds no face,
    the predictor runs on a fixed box covering ``fallback_box`` of the image (the face data's
    ``dlib_fallback_box`` rule for aligned crops).
    """

    num_landmarks = 68

    def __init__(
        self,
        *,
        sigma: float = 1.5,
        detect_size: int = 256,
        fallback_box: tuple[float, float, float, float] = (0.12, 0.2, 0.88, 0.96),
    ) -> None:
        self._dlib = _import_dlib()
        self.detector = self._dlib.get_frontal_face_detector()
        self.predictor = self._dlib.shape_predictor(str(dlib_model_path()))
        self.renderer = LandmarkHeatmaps(sigma=sigma)
        self.detect_size = detect_size
        self.fallback_box = fallback_box
        self.found_face: list[bool] = []  # per image of the last call

    def landmarks(self, images: Tensor) -> Tensor:
        """Faces ``[B, 3, H, W]`` in [0, 1] -> landmarks ``[B, 68, 2]`` in their pixel frame."""
        import numpy as np

        check_images(images, "dlib68")
        h, w = images.shape[-2:]
        s = self.detect_size
        big = F.interpolate(images.detach().float().cpu(), size=(s, s), mode="bilinear")
        arrays = (big.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        out, self.found_face = [], []
        for arr in arrays:
            arr = np.ascontiguousarray(arr)
            boxes = self.detector(arr, 0)
            if len(boxes):
                box = max(boxes, key=lambda r: r.area())
            else:
                x0, y0, x1, y1 = (round(v * s) for v in self.fallback_box)
                box = self._dlib.rectangle(x0, y0, x1, y1)
            self.found_face.append(bool(len(boxes)))
            shape = self.predictor(arr, box)
            out.append([(shape.part(i).x, shape.part(i).y) for i in range(68)])
        pts = torch.tensor(out, dtype=torch.float32)
        return rescale_points(pts, (s, s), (h, w)).to(images.device)

    def __call__(self, images: Tensor) -> Tensor:
        """Faces ``[B, 3, H, W]`` -> heatmaps ``[B, 68, H, W]`` rendered at dlib's landmarks."""
        h, w = images.shape[-2:]
        if h != w:
            raise ValueError(f"dlib68 source: square images expected, got {h}x{w}")
        pts = self.landmarks(images)
        return self.renderer.heatmaps_from_points(pts, h).to(images.dtype)
