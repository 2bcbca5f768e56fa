"""progface: plugin-extensible 8x face super-resolution (16x16 -> 128x128)."""

__version__ = "0.1.0"
