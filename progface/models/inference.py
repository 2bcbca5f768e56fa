"""Inference without changing the math: fold load-time constants, pick layout and precision.

:func:`optimize_for_inference` copies a network and

- folds the equalised-learning-rate scale of :class:`~progface.models.progressive.EqualConv2d`
  into plain ``nn.Conv2d`` weights (the reference multiplies ``weight_orig`` by it at every call),
- folds every eval-mode ``BatchNorm2d`` that directly follows a ``Conv2d``/``ConvTranspose2d`` in
  an ``nn.Sequential`` into that convolution (progressive generator, URDGN, FSRNet; VDSR has no
  BatchNorm),
- runs in ``torch.inference_mode`` with channels_last tensors, optionally under bf16 (CPU, CUDA)
  or fp16 (CUDA) autocast, optionally through ``torch.compile`` (falls back to eager, once, with
  a warning, where compilation fails).

Folding is exact algebra; fp32 outputs differ from the reference by rounding only (the tests
assert 1e-5 max abs on the real architectures).
"""

from __future__ import annotations

import contextlib
import copy
import warnings

import torch
from torch import nn

from progface.models.progressive import EqualConv2d

__all__ = [
    "InferenceModel",
    "PRECISIONS",
    "fold_batchnorm",
    "fold_equalised_lr",
    "optimize_for_inference",
]

PRECISIONS = ("fp32", "bf16", "fp16")
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def fold_equalised_lr(model: nn.Module) -> nn.Module:
    """Replace every ``EqualConv2d`` in ``model`` (in place) by an ``nn.Conv2d`` holding
    ``weight_orig * scale``; returns ``model``."""
    for name, child in list(model.named_children()):
        if isinstance(child, EqualConv2d):
            inner = child.conv
            cout, cin, kh, kw = inner.weight_orig.shape
            conv = nn.Conv2d(cin, cout, (kh, kw), padding=inner.padding)
            conv = conv.to(inner.weight_orig.device, inner.weight_orig.dtype)
            with torch.no_grad():
                # float64 so the folded weight is the correctly rounded product
                weight = inner.weight_orig.double() * inner.scale
                conv.weight.copy_(weight.to(inner.weight_orig.dtype))
                conv.bias.copy_(inner.bias)
            setattr(model, name, conv)
        else:
            fold_equalised_lr(child)
    return model


def _fold_pair(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.BatchNorm2d) -> nn.Module:
    """``bn(conv(x))`` as one convolution (eval-mode BatchNorm is a per-channel affine map)."""
    if conv.groups != 1:
        raise ValueError("folding BatchNorm into a grouped convolution is not supported")
    fused = copy.deepcopy(conv)
    w = conv.weight.detach().double()
    bias = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(bn.bias)
    scale = bn.weight.detach().double() * torch.rsqrt(bn.running_var.double() + bn.eps)
    shape = [1, -1, 1, 1] if isinstance(conv, nn.ConvTranspose2d) else [-1, 1, 1, 1]
    dtype = conv.weight.dtype
    fused.weight = nn.Parameter((w * scale.view(shape)).to(dtype), requires_grad=False)
    folded_bias = (bias.double() - bn.running_mean.double()) * scale + bn.bias.double()
    fused.bias = nn.Parameter(folded_bias.to(dtype), requires_grad=False)
    return fused


def _foldable(bn: nn.Module) -> bool:
    return (
        isinstance(bn, nn.BatchNorm2d)
        and not bn.training
        and bn.running_mean is not None
        and bn.running_var is not None
        and bn.affine
    )


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold eval-mode BatchNorm2d layers that directly follow a convolution inside an
    ``nn.Sequential`` into it (in place; the BatchNorm becomes ``nn.Identity``)."""
    if isinstance(model, nn.Sequential):
        names = list(model._modules)
        for prev, name in zip(names, names[1:]):
            conv, bn = model._modules[prev], model._modules[name]
            if isinstance(conv, _CONVS) and conv.groups == 1 and _foldable(bn):
                model._modules[prev] = _fold_pair(conv, bn)
                model._modules[name] = nn.Identity()
    for child in model.children():
        fold_batchnorm(child)
    return model


def _cast_convs(model: nn.Module, dtype: torch.dtype) -> None:
    # Autocast rounds conv weights and biases to ``dtype`` at every call; rounding them once
    # gives bit-identical outputs without the per-call cast.
    for m in model.modules():
        if isinstance(m, _CONVS):
            m.to(dtype)


class InferenceModel(nn.Module):
    """Runs ``net`` under ``torch.inference_mode`` with the chosen layout and precision.

    Outputs are float32 and contiguous (NCHW) whatever runs inside, so callers see the
    reference's tensors. ``compile_error`` holds why ``torch.compile`` fell back, if it did.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        precision: str = "fp32",
        channels_last: bool = True,
        compile: bool = False,
    ) -> None:
        super().__init__()
        self.net = net
        self.precision = precision
        self.channels_last = channels_last
        self.compile_error: str | None = None
        self._compiled = None
        if compile:
            try:  # some Python versions and platforms refuse at once
                self._compiled = torch.compile(net)
            except Exception as err:
                self._fall_back(err)

    def _autocast(self, device_type: str):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type, dtype=_AUTOCAST_DTYPES[self.precision])

    def _run(self, *args, **kwargs):
        if self._compiled is not None:
            try:
                return self._compiled(*args, **kwargs)
            except Exception as err:  # no compiler, unsupported op, ...: eager is always right
                self._fall_back(err)
        return self.net(*args, **kwargs)

    def _fall_back(self, err: Exception) -> None:
        first_line = (str(err).splitlines() or [""])[0][:200]
        self.compile_error = f"{type(err).__name__}: {first_line}"
        warnings.warn(f"torch.compile failed, running eager: {self.compile_error}", stacklevel=4)
        self._compiled = None

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            raise ValueError(f"expected images [B,C,H,W], got {getattr(x, 'shape', type(x))}")
        with torch.inference_mode(), self._autocast(x.device.type):
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = self._run(x, *args, **kwargs)
        return y.float().contiguous()


def optimize_for_inference(
    model: nn.Module,
    precision: str = "fp32",
    channels_last: bool = True,
    compile: bool = False,
) -> InferenceModel:
    """A folded copy of ``model`` for inference (``model`` itself is left untouched).

    Args:
        model: any network or method module (``ProgressiveSR``, ``ProgressiveGenerator``,
            ``SuperResolver`` of VDSR/URDGN/FSRNet, ...); it is put in eval mode in the copy.
        precision: ``fp32`` (the reference's math), ``bf16`` (autocast, CPU or CUDA) or ``fp16``
            (autocast, CUDA only); conv weights are then stored in that precision (bit-identical
            to autocast's per-call rounding).
        channels_last: run convolutions on NHWC tensors (faster oneDNN/cuDNN kernels).
        compile: wrap the folded network in ``torch.compile`` (off by default: no gain shown on
            CPU yet; see ``benchmarks/speed.py``).

    Returns:
        :class:`InferenceModel`; call it like ``model`` (float32 NCHW outputs).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 runs on CUDA only; use bf16 on a CPU")
    net = copy.deepcopy(model).eval()
    fold_batchnorm(fold_equalised_lr(net))
    net.requires_grad_(False)
    if precision != "fp32":
        _cast_convs(net, _AUTOCAST_DTYPES[precision])
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return InferenceModel(net, precision=precision, channels_last=channels_last, compile=compile)
