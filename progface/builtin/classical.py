"""Built-in plugin: the classical upsampling methods ``bilinear`` and ``bicubic``."""

from __future__ import annotations

from progface.hookspecs import hookimpl
from progface.registry import MethodSpec


def _loader(mode: str):
    def load(weights=None, device="cpu"):
        from progface.models.interpolate import Interpolate

        return Interpolate(mode=mode, size=128).to(device).eval()

    return load


@hookimpl
def register_methods(register):
    for mode in ("bilinear", "bicubic"):
        register(
            MethodSpec(
                name=mode,
                load=_loader(mode),
                description=f"{mode} upsampling 16 -> 128 (PIL-compatible kernel)",
                count_parameters=lambda: 0,
                default_for=("bench",) if mode == "bicubic" else (),
            )
        )
