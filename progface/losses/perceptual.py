"""Perceptual loss on VGG16 features (Johnson et al. 2016; paper Eq. 3), timm's ``vgg16``.

As the authors trained: ImageNet VGG16 (torchvision's ``vgg16-397923af.pth``), frozen, fed
SR and HR mapped to [0, 1] *without* ImageNet mean/std normalisation, and the loss is the sum
of the feature MSEs after relu1_2, relu2_2, relu3_3 and relu4_3. The paper's text uses one
layer (``layers=("relu2_2",)`` or any other single name selects that).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from progface.losses.heatmap import to_unit
from progface.weights import WeightsError, WeightSpec, resolve, torch_load_data

VGG16_WEIGHTS = WeightSpec(
    filename="vgg16-397923af.pth",
    url="https://download.pytorch.org/models/vgg16-397923af.pth",
    sha256="397923af",
    licence="BSD-3-Clause (torchvision); trained on ImageNet-1k",
    config={"architecture": "vgg16", "source": "torchvision VGG16_Weights.IMAGENET1K_V1"},
)
# Post-ReLU outputs of VGG16's five blocks: timm features_only out_index and the index of the
# ReLU in torchvision's (and timm's) ``features`` Sequential.
VGG_LAYERS = {"relu1_2": (0, 3), "relu2_2": (1, 8), "relu3_3": (2, 15), "relu4_3": (3, 22),
              "relu5_3": (4, 29)}  # fmt: skip
AUTHORS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from progface.weights import load_safetensors

        return load_safetensors(path)[0]
    try:
        # weights_only: a restricted unpickler that builds tensors and containers only.
        sd = torch_load_data(path)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise WeightsError(f"{path}: not a plain tensor state dict ({err})") from err
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{path}: expected a state dict of tensors")
    return sd


def vgg16_timm_state_dict(
    torchvision_sd: dict[str, torch.Tensor], last_index: int
) -> dict[str, torch.Tensor]:
    """torchvision ``features.N.{weight,bias}`` (N <= last_index) -> timm features_only
    ``features_N.*``; the classifier keys are dropped."""
    out = {}
    for key, value in torchvision_sd.items():
        parts = key.split(".")
        if parts[0] == "features" and len(parts) == 3 and int(parts[1]) <= last_index:
            out[f"features_{parts[1]}.{parts[2]}"] = value
    return out


def build_vgg16_features(
    layers: Sequence[str] = AUTHORS_LAYERS, weights: str | Path | None = None
) -> nn.Module:
    """timm ``vgg16`` (features_only, up to the deepest of ``layers``), frozen and in eval mode.

    ``weights``: a path to torchvision's ``vgg16-397923af.pth`` (or a safetensors file with its
    keys), None for the cached/downloaded file (an offline error names file, url and cache
    path), or ``"random"`` for untrained weights (timing and tests only).
    """
    import timm

    unknown = [name for name in layers if name not in VGG_LAYERS]
    if unknown or not layers:
        raise ValueError(f"unknown VGG16 layers {unknown}; choose from {list(VGG_LAYERS)}")
    out_indices = sorted({VGG_LAYERS[name][0] for name in layers})
    model = timm.create_model(
        "vgg16", pretrained=False, features_only=True, out_indices=tuple(out_indices)
    )
    if weights != "random":
        path = resolve(VGG16_WEIGHTS, weights)
        last = max(VGG_LAYERS[name][1] for name in layers)
        sd = vgg16_timm_state_dict(_read_state_dict(path), last)
        expected = model.state_dict()
        missing = sorted(set(expected) - set(sd))
        if missing:
            raise WeightsError(f"{path}: not VGG16 weights (missing {missing[:4]} ...)")
        bad = [k for k in expected if tuple(sd[k].shape) != tuple(expected[k].shape)]
        if bad:
            raise WeightsError(f"{path}: shape mismatch for {bad[:4]} (not VGG16 weights)")
        model.load_state_dict(sd, strict=True)
    model.eval().requires_grad_(False)
    return model


def perceptual_loss(
    sr_features: Sequence[torch.Tensor], hr_features: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Sum over layers of the feature MSE (mean over every element)."""
    return sum(F.mse_loss(a, b) for a, b in zip(sr_features, hr_features, strict=True))


class PerceptualLoss(nn.Module):
    """``forward(sr, hr, batch=None)``: :func:`perceptual_loss` of frozen VGG16 features (the
    registered loss ``perceptual``; ``batch`` is not used).

    Args:
        layers: VGG16 layer names (default: the authors' four).
        weights: see :func:`build_vgg16_features`.
        input_range: value range of ``sr``/``hr`` (the generator's [-1, 1] by default); they are
            mapped to [0, 1] before VGG.
        imagenet_norm: also apply ImageNet mean/std (the authors did not).
    """

    def __init__(
        self,
        layers: Sequence[str] = AUTHORS_LAYERS,
        weights: str | Path | None = None,
        input_range: tuple[float, float] = (-1.0, 1.0),
        imagenet_norm: bool = False,
        vgg: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.layers = tuple(layers)
        self.vgg = vgg if vgg is not None else build_vgg16_features(self.layers, weights)
        self.vgg.eval().requires_grad_(False)
        self.input_range = tuple(input_range)
        self.imagenet_norm = imagenet_norm
        self.weights_source = "random" if weights == "random" else str(weights or "cache")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.vgg.eval()
        return self

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = to_unit(images, self.input_range)
        if self.imagenet_norm:
            x = (x - self.mean) / self.std
        return list(self.vgg(x))  # one map per distinct layer, shallow to deep

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, batch=None) -> torch.Tensor:
        if sr.shape != hr.shape:
            raise ValueError(f"SR and HR shapes differ: {tuple(sr.shape)} vs {tuple(hr.shape)}")
        with torch.no_grad():
            hr_feats = self.features(hr)
        return perceptual_loss(self.features(sr), hr_feats)
