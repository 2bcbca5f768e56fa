"""progface plugin: ESPCN (Shi et al., CVPR 2016), the efficient sub-pixel convolutional network.

"Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel Convolutional
Neural Network": every convolution runs on the low-resolution image, and the last layer's
``C * r^2`` channels are rearranged into an ``r``-times larger image (pixel shuffle). The paper's
layout, kept here: conv 5x5 (64) + tanh -> conv 3x3 (32) + tanh -> conv 3x3 (``3 * r^2``) ->
pixel shuffle, on the 16 px LR face with ``r = 8`` (78,816 parameters).

Registers the generator ``espcn`` (trainable by the core's ``sr`` recipe) and the method
``espcn``: the generator with the weights shipped inside this package (``weights/``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import progface
from progface.registry import GeneratorSpec, MethodSpec
from progface.weights import WeightSpec

__all__ = ["ESPCN", "ESPCNConfig", "SHIPPED", "WEIGHTS_DIR", "build", "load", "shipped_path"]

__version__ = "0.1.0"

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_FILE = "espcn-celeba-x8.safetensors"
WEIGHTS_SHA256 = "bbd95a4df34ea00676c2ddea16029f52e3f51d24985d32af11216a9021db827d"
LICENCE = "research only (trained on CelebA faces, whose licence is non-commercial research)"


@dataclass(frozen=True)
class ESPCNConfig:
    """Architecture of an ESPCN network (timm style: the config builds the module).

    Args:
        scale: upscaling factor ``r`` (8: 16 px -> 128 px).
        in_chans: image channels (3, RGB; the paper's networks run on the Y channel, 1).
        widths: channels of the two hidden layers (64, 32 in the paper).
        kernels: kernel sizes of the three layers (5, 3, 3 in the paper).
        residual: add the bicubic upsampled LR face to the output (not in the paper; off).
    """

    scale: int = 8
    in_chans: int = 3
    widths: tuple[int, int] = (64, 32)
    kernels: tuple[int, int, int] = (5, 3, 3)
    residual: bool = False

    def __post_init__(self) -> None:
        if self.scale < 1 or self.in_chans < 1 or len(self.widths) != 2 or len(self.kernels) != 3:
            raise ValueError(f"invalid ESPCN config {self}")
        if any(k % 2 == 0 for k in self.kernels):
            raise ValueError(f"ESPCN kernels must be odd (same padding), got {self.kernels}")


def _torch():
    import torch
    from torch import nn

    return torch, nn


def _module_class():
    torch, nn = _torch()
    import torch.nn.functional as F

    class ESPCN(nn.Module):
        """ESPCN: ``[B,C,h,w]`` in [0, 1] -> ``[B,C,r*h,r*w]`` (not clamped).

        State-dict keys: ``conv1``, ``conv2``, ``conv3`` (weight, bias each).
        """

        def __init__(self, config: ESPCNConfig | None = None, **overrides) -> None:
            super().__init__()
            config = config or ESPCNConfig()
            if overrides:
                config = ESPCNConfig(**{**asdict(config), **overrides})
            self.config = config
            c, (w1, w2), (k1, k2, k3) = config.in_chans, config.widths, config.kernels
            r = config.scale
            self.conv1 = nn.Conv2d(c, w1, k1, padding=k1 // 2)
            self.conv2 = nn.Conv2d(w1, w2, k2, padding=k2 // 2)
            self.conv3 = nn.Conv2d(w2, c * r * r, k3, padding=k3 // 2)
            self.shuffle = nn.PixelShuffle(r)

        def forward(self, lr: torch.Tensor) -> torch.Tensor:
            x = torch.tanh(self.conv1(lr))
            x = torch.tanh(self.conv2(x))
            out = self.shuffle(self.conv3(x))
            if self.config.residual:
                size = (lr.shape[-2] * self.config.scale, lr.shape[-1] * self.config.scale)
                out = out + F.interpolate(lr, size=size, mode="bicubic", align_corners=False,
                                          antialias=True)  # fmt: skip
            return out

        def super_resolve(self, lr: torch.Tensor) -> torch.Tensor:
            """The generator contract: LR ``[B,3,16,16]`` in [0, 1] -> ``[B,3,128,128]``."""
            if lr.ndim != 4 or lr.shape[1] != self.config.in_chans:
                raise ValueError(
                    f"espcn: expected LR faces [B,{self.config.in_chans},H,W], got "
                    f"{tuple(lr.shape)}"
                )
            return self(lr)

        def config_dict(self) -> dict:
            """Facts for the exported weight file's metadata."""
            return {"architecture": "espcn", **asdict(self.config)}

    return ESPCN


_CLASS = None


def __getattr__(name: str):  # ESPCN is built on first use, so importing the plugin loads no torch
    global _CLASS
    if name == "ESPCN":
        if _CLASS is None:
            _CLASS = _module_class()
        return _CLASS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build(**options):
    """The generator: ``ESPCN(ESPCNConfig(**options))`` (JSON values: lists become tuples)."""
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    return __getattr__("ESPCN")(ESPCNConfig(**fixed))


def count_parameters(config: ESPCNConfig | None = None) -> int:
    """Parameters of the network, computed from the config (no module built)."""
    c = config or ESPCNConfig()
    (w1, w2), (k1, k2, k3), out = c.widths, c.kernels, c.in_chans * c.scale**2
    return (c.in_chans * k1 * k1 + 1) * w1 + (w1 * k2 * k2 + 1) * w2 + (w2 * k3 * k3 + 1) * out


def shipped_path() -> Path:
    """The weight file inside this package."""
    return WEIGHTS_DIR / WEIGHTS_FILE


SHIPPED = WeightSpec(
    filename=WEIGHTS_FILE,
    folder=WEIGHTS_DIR,  # shipped inside this package, not progface's
    sha256=WEIGHTS_SHA256,
    licence=LICENCE,
    shipped=True,
    config={"architecture": "espcn", "scale": 8},
)


def load(weights=None, device="cpu"):
    """The method: ESPCN with ``weights`` (default: the shipped file), LR [0, 1] -> SR [0, 1]."""
    from progface.models.runner import load_generator_method
    from progface.weights import resolve

    path = weights if weights is not None else resolve(SHIPPED)
    return load_generator_method("espcn", path, device)


@progface.hookimpl
def register_generators(register):
    register(GeneratorSpec("espcn", build, "ESPCN (Shi et al. 2016), sub-pixel convs on the LR"))


@progface.hookimpl
def register_methods(register):
    register(
        MethodSpec(
            "espcn",
            load,
            "ESPCN (Shi et al. 2016), 3 convs on the 16 px face + pixel shuffle x8",
            weights=SHIPPED,
            generator="espcn",
            count_parameters=count_parameters,
        )
    )
