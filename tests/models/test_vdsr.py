from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from progface.models.vdsr import VDSR, bicubic_upsample, clip_gradients_adjustable
from progface.weights import WeightsError
from progface.weights.generators import load_weights, save_weights


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(
    "in_chans,bias,expected",
    [(3, True, 668_227), (1, True, 665_921), (1, False, 664_704), (3, False, 667_008)],
)
def test_parameter_counts_match_reference(in_chans, bias, expected):
    assert n_params(VDSR(in_chans=in_chans, bias=bias)) == expected


def test_every_state_dict_key_and_shape():
    sd = VDSR().state_dict()
    expected = {"input.weight": (64, 3, 3, 3), "input.bias": (64,)}
    for i in range(18):
        expected[f"residual_layer.{i}.conv.weight"] = (64, 64, 3, 3)
        expected[f"residual_layer.{i}.conv.bias"] = (64,)
    expected |= {"output.weight": (3, 64, 3, 3), "output.bias": (3,)}
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected


def test_flops_match_reference():
    with FlopCounterMode(display=False) as counter:
        VDSR(in_chans=1).eval()(torch.zeros(1, 1, 128, 128))
    assert counter.get_total_flops() / 1e9 == pytest.approx(21.781, abs=1e-3)


def test_shape_and_gradients_reach_every_parameter():
    model = VDSR()
    lr = torch.rand(1, 3, 16, 16)
    sr = model.super_resolve(lr)
    assert sr.shape == (1, 3, 128, 128)
    sr.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_zero_residual_gives_the_bicubic_input():
    # With the last conv zeroed the network is the identity: RGB VDSR returns the bicubic image,
    # Y VDSR returns it through the YCbCr round trip.
    lr = torch.rand(2, 3, 16, 16)
    up = bicubic_upsample(lr)
    for in_chans in (3, 1):
        model = VDSR(in_chans=in_chans)
        torch.nn.init.zeros_(model.output.weight)
        torch.nn.init.zeros_(model.output.bias)
        torch.testing.assert_close(model.super_resolve(lr), up, atol=1e-5, rtol=0)


def test_bicubic_upsample_is_pil_kernel_and_unclamped():
    # 2x bicubic (a = -0.5) of the step [0, 0, 1, 1]: output 5 sits at x = 2.25, taps 1, 2, 3 have
    # weights -0.0703125, 0.8671875, 0.2265625 (tap 4 lies outside and, as in PIL, is dropped and
    # the weights renormalised), so it overshoots to 1.09375 / 1.0234375; output 2 mirrors it.
    x = torch.tensor([0.0, 0.0, 1.0, 1.0]).repeat(4, 1)[None, None]
    row = bicubic_upsample(x, 8)[0, 0, 0]
    assert row[5].item() == pytest.approx(1.09375 / 1.0234375, abs=1e-6)
    assert row[2].item() == pytest.approx(-0.0703125 / 1.0234375, abs=1e-6)


def test_y_variant_changes_only_luma():
    lr = torch.rand(1, 3, 16, 16)
    model = VDSR(in_chans=1)
    up = bicubic_upsample(lr)
    sr = model.super_resolve(lr)

    def chroma(x):
        r, g, b = x.unbind(1)
        y = 0.299 * r + 0.587 * g + 0.114 * b
        return torch.stack([b - y, r - y], 1)

    torch.testing.assert_close(chroma(sr), chroma(up), atol=1e-5, rtol=0)
    assert not torch.allclose(sr, up, atol=1e-3)


def test_adjustable_clipping_bounds_by_theta_over_lr():
    p = torch.nn.Parameter(torch.zeros(4))
    p.grad = torch.tensor([-1.0, -0.05, 0.05, 3.0])
    clip_gradients_adjustable([p], theta=0.01, lr=0.1)  # bound 0.1
    torch.testing.assert_close(p.grad, torch.tensor([-0.1, -0.05, 0.05, 0.1]))
    clip_gradients_adjustable([p], theta=0.01, lr=1.0)  # bound 0.01
    torch.testing.assert_close(p.grad, torch.tensor([-0.01, -0.01, 0.01, 0.01]))
    with pytest.raises(ValueError):
        clip_gradients_adjustable([p], theta=0.01, lr=0.0)


def test_rejects_wrong_channels():
    with pytest.raises(ValueError, match=r"\[B,1,H,W\]"):
        VDSR(in_chans=1)(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError):
        VDSR(in_chans=2)


def test_short_training_overfits_a_batch():
    # The paper's optimiser on 24 px patches: SGD 0.1, momentum 0.9, adjustable clipping.
    torch.manual_seed(0)
    model = VDSR(depth=5, width=16)
    hr = F.avg_pool2d(torch.rand(4, 3, 48, 48), 2)  # smooth-ish targets
    x = bicubic_upsample(F.interpolate(hr, size=6, mode="area"), 24)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    losses = []
    for _ in range(40):
        loss = 0.5 * (model(x) - hr).square().sum() / len(x)
        opt.zero_grad()
        loss.backward()
        clip_gradients_adjustable(model, theta=0.01, lr=0.1)
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_safetensors_round_trip(tmp_path):
    model = VDSR(in_chans=1, bias=False).eval()
    path = save_weights(model, tmp_path / "v.safetensors", model.config_dict())
    other = VDSR(in_chans=1, bias=False).eval()
    config = load_weights(other, path, "vdsr")
    assert config == {"architecture": "vdsr", "in_chans": 1, "depth": 20, "width": 64,
                      "bias": False, "size": 128}  # fmt: skip
    lr = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(other.super_resolve(lr), model.super_resolve(lr), rtol=0, atol=0)
    with pytest.raises(WeightsError, match="not urdgn"):
        load_weights(other, path, "urdgn")
    with pytest.raises(WeightsError, match=r"missing keys \(input.bias"):
        load_weights(VDSR(in_chans=1), path, "vdsr")
