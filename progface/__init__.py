"""progface: plugin-extensible 8x face super-resolution (16x16 -> 128x128)."""

__version__ = "0.1.0"

from progface.hookspecs import hookimpl  # noqa: E402  (cheap: pluggy only)

__all__ = ["__version__", "hookimpl"]
