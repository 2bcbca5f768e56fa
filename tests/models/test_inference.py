"""Folded inference models compute what the reference networks compute (real sizes, random
weights with non-trivial BatchNorm statistics)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from progface.models import inference
from progface.models.fsrnet import FSRNet
from progface.models.inference import fold_batchnorm, optimize_for_inference
from progface.models.progressive import EqualConv2d, ProgressiveGenerator, ProgressiveSR
from progface.models.runner import SuperResolver
from progface.models.urdgn import URDGNGenerator
from progface.models.vdsr import VDSR
from tests.models.trained_bn import random_bn

FP32_TOL = 1e-5  # max abs difference, folded fp32 vs reference (measured ~3e-7 on `ours`)


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return random_bn(ProgressiveGenerator())


def _lr(batch=2, size=16, seed=1):
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("step,alpha", [(3, 1.0), (3, 0.3), (2, 0.5), (1, -1.0)])
def test_folded_generator_matches_reference(generator, step, alpha):
    x = _lr() * 2 - 1
    with torch.no_grad():
        ref = generator(x, step, alpha)
    out = optimize_for_inference(generator)(x, step, alpha)
    assert out.shape == (2, 3, 16 * 2**step, 16 * 2**step) and out.dtype == torch.float32
    assert (out - ref).abs().max().item() <= FP32_TOL


def test_folded_method_matches_reference(generator):
    method = ProgressiveSR(generator)
    lr = _lr(batch=3)
    with torch.no_grad():
        ref = method(lr)
    out = optimize_for_inference(method, channels_last=False)(lr)
    assert out.is_contiguous() and (out - ref).abs().max().item() <= FP32_TOL


def test_fold_removes_scale_and_batchnorm_only(generator):
    folded = optimize_for_inference(generator).net
    assert not any(isinstance(m, (EqualConv2d, nn.BatchNorm2d)) for m in folded.modules())
    # the reference is untouched
    assert sum(isinstance(m, EqualConv2d) for m in generator.modules()) == 6
    # 8,969,097 minus the BatchNorm weights and biases (2 x 2,752 channels); every folded conv
    # already had a bias
    assert sum(p.numel() for p in generator.parameters()) == 8_969_097
    assert sum(p.numel() for p in folded.parameters()) == 8_969_097 - 2 * 2_752


@pytest.mark.parametrize(
    "build,batchnorms",
    [
        (lambda: URDGNGenerator(), 4),
        (lambda: VDSR(), 0),
        # 108 BatchNorms; the 21 that open a pre-activation bottleneck follow no conv
        (lambda: FSRNet(num_parsing=0), 87),
    ],
    ids=["urdgn", "vdsr", "fsrnet"],
)
def test_folded_baselines_match_reference(build, batchnorms):
    torch.manual_seed(0)
    method = SuperResolver(random_bn(build()))
    left = sum(isinstance(m, nn.BatchNorm2d) for m in method.modules())
    lr = _lr(batch=1)
    with torch.no_grad():
        ref = method(lr)
    fast = optimize_for_inference(method)
    out = fast(lr)
    assert out.shape == (1, 3, 128, 128)
    assert (out - ref).abs().max().item() <= FP32_TOL
    folded_left = sum(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    assert left - folded_left == batchnorms


def test_urdgn_parameter_count_after_fold():
    net = random_bn(URDGNGenerator())
    folded = optimize_for_inference(net).net
    # 1,054,243 minus BatchNorm weight + bias of 16 + 64 + 128 + 256 channels
    assert sum(p.numel() for p in folded.parameters()) == 1_054_243 - 2 * 464


def test_bf16_close_to_fp32(generator):
    method = ProgressiveSR(generator)
    lr = _lr(batch=2)
    fp32 = optimize_for_inference(method)(lr)
    bf16 = optimize_for_inference(method, precision="bf16")(lr)
    assert bf16.dtype == torch.float32
    diff = (bf16 - fp32).abs()
    # measured on these random weights: max 3.4e-3, mean 8.5e-4 (outputs in [0, 1] units)
    assert diff.max().item() <= 1e-2 and diff.mean().item() <= 2e-3


def test_bf16_is_autocast_of_the_folded_fp32_model(generator):
    # conv weights are stored in bf16 once; autocast would round them the same way every call
    method = ProgressiveSR(generator)
    lr = _lr(batch=1)
    folded = optimize_for_inference(method).net
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = folded(lr.contiguous(memory_format=torch.channels_last)).float()
    assert torch.equal(optimize_for_inference(method, precision="bf16")(lr), expected)


def test_training_mode_batchnorm_is_not_folded():
    net = URDGNGenerator().train()
    fold_batchnorm(net)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 4


def test_compile_failure_falls_back_to_eager(generator, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(inference.torch, "compile", lambda net, **kw: broken)
    method = ProgressiveSR(generator)
    fast = optimize_for_inference(method, compile=True)
    lr = _lr(batch=1)
    with pytest.warns(UserWarning, match="torch.compile failed"):
        out = fast(lr)
    assert "no C++ compiler" in fast.compile_error
    assert torch.equal(out, optimize_for_inference(method)(lr))


def test_compile_refused_at_once_falls_back(generator, monkeypatch):
    def refuse(net, **kwargs):
        raise RuntimeError("Dynamo is not supported on this Python")

    monkeypatch.setattr(inference.torch, "compile", refuse)
    with pytest.warns(UserWarning, match="torch.compile failed"):
        fast = optimize_for_inference(generator, compile=True)
    assert "not supported" in fast.compile_error
    assert fast(_lr(batch=1) * 2 - 1).shape == (1, 3, 128, 128)


def test_bad_arguments(generator):
    with pytest.raises(ValueError, match="precision must be one of"):
        optimize_for_inference(generator, precision="int8")
    with pytest.raises(ValueError, match="fp16 runs on CUDA only"):
        optimize_for_inference(generator, precision="fp16")
    with pytest.raises(ValueError, match=r"expected images \[B,C,H,W\]"):
        optimize_for_inference(generator)(torch.rand(3, 16, 16))
