"""Networks of the paper: exact parameter counts and the authors' state-dict layout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from progface.models.progressive import (
    ProgressiveConfig,
    ProgressiveDiscriminator,
    ProgressiveGenerator,
    minibatch_std,
)


def _bn(prefix, c):
    return [(f"{prefix}.{k}", (c,)) for k in ("weight", "bias", "running_mean", "running_var")] + [
        (f"{prefix}.num_batches_tracked", ())
    ]


def _eq(prefix, cout, cin, k=3):
    return [(f"{prefix}.conv.bias", (cout,)), (f"{prefix}.conv.weight_orig", (cout, cin, k, k))]


def _res(prefix, c):
    return (
        _eq(f"{prefix}.conv.0", c, c)
        + _bn(f"{prefix}.conv.1", c)
        + _eq(f"{prefix}.conv.3", c, c)
        + _bn(f"{prefix}.conv.4", c)
    )


# Typed from the authors' printed state dicts (reference: official_implementation.md section 5).
GENERATOR_KEYS = (
    [("to_rgb.0.weight", (3, 256, 1, 1)), ("to_rgb.0.bias", (3,)),
     ("to_rgb.1.weight", (3, 128, 1, 1)), ("to_rgb.1.bias", (3,)),
     ("to_rgb.2.weight", (3, 64, 1, 1)), ("to_rgb.2.bias", (3,)),
     ("step1.0.weight", (512, 3, 3, 3)), ("step1.0.bias", (512,))]
    + _bn("step1.1", 512) + _res("step1.3", 512)
    + [("step1.4.weight", (512, 256, 4, 4)), ("step1.4.bias", (256,))] + _bn("step1.5", 256)
    + _res("step2.0", 256)
    + [("step2.1.weight", (256, 128, 4, 4)), ("step2.1.bias", (128,))] + _bn("step2.2", 128)
    + _res("step3.0", 128)
    + [("step3.1.weight", (128, 64, 4, 4)), ("step3.1.bias", (64,))] + _bn("step3.2", 64)
)  # fmt: skip

DISCRIMINATOR_KEYS = (
    [("from_rgb.0.weight", (256, 3, 1, 1)), ("from_rgb.0.bias", (256,)),
     ("from_rgb.1.weight", (128, 3, 1, 1)), ("from_rgb.1.bias", (128,)),
     ("from_rgb.2.weight", (64, 3, 1, 1)), ("from_rgb.2.bias", (64,))]
    + _eq("step1.0.conv.0", 512, 256) + _eq("step1.0.conv.2", 512, 512)
    + _eq("step2.0.conv.0", 256, 128) + _eq("step2.0.conv.2", 256, 256)
    + _eq("step3.0.conv.0", 128, 64) + _eq("step3.0.conv.2", 128, 128)
    + _eq("equal_conv", 512, 513)
    + [("linear.weight", (2048, 512)), ("linear.bias", (2048,)),
       ("linear2.weight", (1, 2048)), ("linear2.bias", (1,))]
)  # fmt: skip


@pytest.fixture(scope="module")
def g():
    torch.manual_seed(0)
    return ProgressiveGenerator()


@pytest.fixture(scope="module")
def d():
    torch.manual_seed(0)
    return ProgressiveDiscriminator()


def _count(m):
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts(g, d):
    assert _count(g) == 8_969_097
    assert _count(d) == 8_065_537
    assert _count(g.step1) == 6_834_944 and _count(g.step2) == 1_705_856
    assert _count(g.step3) == 426_944 and _count(g.to_rgb) == 771 + 387 + 195
    assert _count(d.step1) == 3_539_968 and _count(d.step2) == 885_248
    assert _count(d.step3) == 221_440 and _count(d.from_rgb) == 1_024 + 512 + 256
    head = _count(d.equal_conv) + _count(d.linear) + _count(d.linear2)
    assert head == 3_417_089
    assert sum(b.numel() for b in g.buffers()) == 5_514  # incl. 10 num_batches_tracked
    assert list(d.buffers()) == []


def test_generator_state_dict_layout(g):
    assert len(GENERATOR_KEYS) == 76
    assert [(k, tuple(v.shape)) for k, v in g.state_dict().items()] == GENERATOR_KEYS


def test_discriminator_state_dict_layout(d):
    assert len(DISCRIMINATOR_KEYS) == 24
    assert [(k, tuple(v.shape)) for k, v in d.state_dict().items()] == DISCRIMINATOR_KEYS


def test_equalised_lr_init_and_scale():
    torch.manual_seed(0)
    g = ProgressiveGenerator(config=ProgressiveConfig(channels=(16, 8, 8, 8), d_hidden=8))
    eq = g.step1[3].conv[0]
    w = eq.conv.weight_orig
    assert torch.all(eq.conv.bias == 0) and abs(float(w.detach().std()) - 1) < 0.1
    x = torch.randn(2, 16, 5, 5)
    expected = F.conv2d(x, w * (2 / (16 * 9)) ** 0.5, eq.conv.bias, padding=1)
    torch.testing.assert_close(eq(x), expected)


@torch.no_grad()
def test_generator_steps_and_fade_in(g):
    g.eval()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    for step, size in ((1, 32), (2, 64), (3, 128)):
        assert g(x, step).shape == (2, 3, size, size)
    # step 2 at alpha 0.25: 0.75 * nearest(rgb0(step1)) + 0.25 * rgb1(step2(step1))
    f1 = g.step1(x)
    skip = F.interpolate(g.to_rgb[0](f1), scale_factor=2, mode="nearest")
    new = g.to_rgb[1](g.step2(f1))
    torch.testing.assert_close(g(x, 2, 0.25), 0.75 * skip + 0.25 * new)
    torch.testing.assert_close(g(x, 2, 0.0), skip)
    torch.testing.assert_close(g(x, 2, 1.0), new)  # alpha >= 1: plain path
    torch.testing.assert_close(g(x, 2), new)  # default -1: plain path
    f2 = g.step2(f1)
    skip3 = F.interpolate(g.to_rgb[1](f2), scale_factor=2, mode="nearest")
    torch.testing.assert_close(g(x, 3, 0.5), 0.5 * skip3 + 0.5 * g.to_rgb[2](g.step3(f2)))
    with pytest.raises(ValueError, match="step must be 1, 2 or 3"):
        g(x, 4)


@torch.no_grad()
def test_discriminator_steps_fade_in_and_mbstd(d):
    torch.manual_seed(1)
    for step, size in ((1, 32), (2, 64), (3, 128)):
        assert d(torch.randn(3, 3, size, size), step).shape == (3,)
    x = torch.randn(2, 3, 64, 64)
    # fade-in: (1 - a) * from_rgb[0](avgpool(x)) + a * step2(from_rgb[1](x)), then step1, head
    a = 0.3
    mixed = (1 - a) * d.from_rgb[0](F.avg_pool2d(x, 2)) + a * d.step2(d.from_rgb[1](x))
    feats = d.step1(mixed)
    std = x.std(dim=0, unbiased=True).mean()
    feats = torch.cat([feats, std.expand(2, 1, 16, 16)], 1)
    expected = d.linear2(d.linear(d.equal_conv(feats).mean((2, 3)))).squeeze(1)
    torch.testing.assert_close(d(x, 2, a), expected)


def test_minibatch_std_values_and_batch_of_one(d):
    x = torch.tensor([[[[1.0]]], [[[3.0]]]]).expand(2, 3, 1, 1)
    assert float(minibatch_std(x)) == pytest.approx(2**0.5)  # unbiased std of {1, 3}
    assert float(minibatch_std(x[:1])) == 0.0
    one = torch.randn(1, 3, 32, 32)
    out = d(one, 1)
    assert out.shape == (1,) and torch.isfinite(out).all()
    one.requires_grad_(True)
    d(one, 1).sum().backward()
    assert torch.isfinite(one.grad).all()
