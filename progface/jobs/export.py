"""``progface export``: a learned method as an ONNX file (LR [B,3,16,16] in [0, 1] -> SR
[B,3,128,128], dynamic batch), with the same math as :mod:`progface.models.inference` in fp32.

Uses torch's TorchScript-based exporter (``dynamo=False``): it needs ``onnx`` (the ``onnx``
extra) but not ``onnxscript``, and maps every op of the built-in networks; the antialiased bicubic resize of
VDSR/FSRNet becomes ONNX ``Resize`` (cubic, a = -0.5, exclude_outside; exact when upsampling).
"""

from __future__ import annotations

import copy
import importlib.util
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from progface.io.atomic import write_atomic
from progface.models.inference import fold_batchnorm, fold_equalised_lr

__all__ = ["OPSET", "export_method", "export_onnx", "onnxruntime_max_diff"]

OPSET = 18  # Resize with antialias needs 18
ONNX_MISSING = "ONNX export needs the onnx package: pip install 'progface[onnx]'"


def _bicubic_aa_symbolic(g, x, output_size, align_corners, scale_factors):
    # torch's antialiased bicubic uses a = -0.5 and renormalises the taps inside the image:
    # ONNX Resize's cubic_coeff_a = -0.5 with exclude_outside = 1.
    empty = g.op("Constant", value_t=torch.tensor([], dtype=torch.float32))
    start, stop = (g.op("Constant", value_t=torch.tensor([i])) for i in (0, 2))
    batch_channels = g.op("Slice", g.op("Shape", x), start, stop)
    sizes = g.op("Concat", batch_channels, output_size, axis_i=0)
    return g.op(
        "Resize", x, empty, empty, sizes, mode_s="cubic", cubic_coeff_a_f=-0.5,
        coordinate_transformation_mode_s="half_pixel", exclude_outside_i=1, antialias_i=1,
    )  # fmt: skip


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    in_size: int = 16,
) -> Path:
    """Write ``model`` (LR faces -> SR faces) as ONNX to ``path``, atomically.

    The model is copied, put in eval mode and folded (equalised-lr scale, BatchNorm) first.
    Input ``lr`` and output ``sr`` have a dynamic batch axis.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        ValueError: ``model`` has no parameters (nothing learned to export).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    if not any(True for _ in model.parameters()):
        raise ValueError("the model has no learned parameters; nothing to export")
    if importlib.util.find_spec("onnx") is None:  # torch's exporter writes through it
        raise ImportError(ONNX_MISSING)
    net = copy.deepcopy(model).float().cpu().eval()
    fold_batchnorm(fold_equalised_lr(net))
    torch.onnx.register_custom_op_symbolic(
        "aten::_upsample_bicubic2d_aa", _bicubic_aa_symbolic, OPSET
    )

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            # its deprecation notice, and tracer notes on the static shape checks of inputs
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", "Constant folding", UserWarning)  # reflect padding
            torch.onnx.export(
                net, (torch.rand(2, 3, in_size, in_size),), str(tmp), dynamo=False,
                input_names=["lr"], output_names=["sr"], opset_version=OPSET,
                dynamic_axes={"lr": {0: "batch"}, "sr": {0: "batch"}},
            )  # fmt: skip

    return write_atomic(path, write, overwrite=overwrite)


def onnxruntime_max_diff(model: nn.Module, path: str | os.PathLike[str], lr: torch.Tensor) -> float:
    """Max abs difference between onnxruntime (CPU) on ``path`` and ``model`` on ``lr``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"lr": lr.numpy()})
    with torch.no_grad():
        ref = model(lr)
    return float((torch.from_numpy(onnx_out) - ref).abs().max())


def export_method(
    name: str,
    path: str | os.PathLike[str],
    *,
    weights: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    check_faces: int = 4,
) -> dict[str, Any]:
    """Export the registered method ``name`` (its default weights unless ``weights``).

    Returns facts for the user: path, method, weights, parameters and, when onnxruntime is
    installed, its max abs difference to torch on ``check_faces`` random LR faces.
    """
    from progface.jobs.runtime import load_method

    path = Path(path)
    if path.exists() and not overwrite:  # before loading any weights
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    model, facts = load_method(name, "cpu", weights)
    if not isinstance(model, nn.Module) or not any(True for _ in model.parameters()):
        raise ValueError(f"method {name!r} has no network to export (it is a fixed resize)")
    export_onnx(model, path, overwrite=overwrite)
    facts = {**facts, "path": str(path), "opset": OPSET}
    facts["parameters"] = sum(p.numel() for p in model.parameters())
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        facts["onnxruntime_max_abs_diff"] = None
    else:
        lr = torch.rand(check_faces, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        facts["onnxruntime_max_abs_diff"] = onnxruntime_max_diff(model, path, lr)
    return facts
