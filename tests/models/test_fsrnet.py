from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from progface.models.fsrnet import FSRGANDiscriminator, FSRNet
from progface.weights import WeightsError
from progface.weights.generators import load_weights, save_weights


def n_params(m: torch.nn.Module | None) -> int:
    return 0 if m is None else sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({}, 3_272_463),  # 68 heatmaps + 11 parsing maps
        ({"num_landmarks": 194}, 3_288_717),  # Helen
        ({"num_landmarks": 0}, 3_263_691),  # parsing maps only
        ({"num_parsing": 0}, 3_272_463 - 1_419),  # landmark priors only (no parsing data)
        ({"hourglass_depth": 4}, 3_596_559),
    ],
)
def test_parameter_counts_match_reference(kwargs, expected):
    assert n_params(FSRNet(**kwargs)) == expected


def test_sub_network_counts_match_reference():
    net = FSRNet()
    assert n_params(net.coarse) == 225_536
    assert n_params(net.encoder) == 926_528
    assert n_params(net.prior) == 1_738_816
    assert n_params(net.heatmap_head) == 8_772
    assert n_params(net.parsing_head) == 1_419
    assert n_params(net.decoder) == 371_392


def test_residual_blocks_are_independent():
    net = FSRNet()
    blocks = [m for m in net.modules() if type(m).__name__ == "ResBlock"]
    assert len(blocks) == 3 + 12 + 2 + 3
    ptrs = {p.data_ptr() for b in blocks for p in b.parameters()}
    assert len(ptrs) == sum(len(list(b.parameters())) for b in blocks)


def test_state_dict_layout():
    sd = {k: tuple(v.shape) for k, v in FSRNet().state_dict().items()}
    # 20 ResBlocks x 2 convs, 2 hourglasses x 10 bottlenecks + 1 bottleneck x 3 convs (+ skip),
    # 5 stem/decoder convs and the transposed conv, 2 heads, 2 image convs
    convs = [k for k, s in sd.items() if k.endswith("weight") and len(s) == 4]
    assert len(convs) == 40 + 21 * 3 + 1 + 4 + 1 + 2 + 3
    assert sd["coarse.0.0.weight"] == (64, 3, 3, 3)
    assert sd["encoder.0.0.weight"] == (64, 3, 3, 3)
    assert sd["prior.0.0.weight"] == (64, 3, 7, 7)
    assert sd["prior.1.skip.weight"] == (128, 64, 1, 1)
    assert sd["prior.4.inner.inner.inner.body.8.weight"] == (128, 64, 1, 1)
    assert sd["heatmap_head.weight"] == (68, 128, 1, 1)
    assert sd["parsing_head.weight"] == (11, 128, 1, 1)
    assert sd["decoder.0.0.weight"] == (64, 192, 3, 3)
    assert sd["decoder.1.weight"] == (64, 64, 3, 3)  # ConvTranspose2d: (in, out, k, k)
    assert sd["decoder.7.weight"] == (3, 64, 3, 3)
    assert "decoder.7.bias" not in sd and "coarse.4.bias" not in sd


def test_flops_match_reference():
    for model, gflops in ((FSRNet(), 30.630), (FSRGANDiscriminator(), 3.077)):
        with FlopCounterMode(display=False) as counter:
            model.eval()(torch.zeros(1, 3, 128, 128))
        assert counter.get_total_flops() / 1e9 == pytest.approx(gflops, abs=1e-3)


def test_discriminator_count_and_patch_output():
    d = FSRGANDiscriminator()
    assert n_params(d) == 4_693_697
    assert d(torch.zeros(2, 3, 128, 128)).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError):
        d(torch.zeros(1, 3, 120, 128))


def test_shapes_ranges_and_gradients():
    net = FSRNet(num_parsing=0)
    out = net(net.prepare(torch.rand(1, 3, 16, 16)))
    assert out.coarse.shape == (1, 3, 128, 128) and out.sr.shape == (1, 3, 128, 128)
    assert out.priors.shape == (1, 68, 64, 64)
    assert out.sr.abs().max() <= 1 and out.coarse.abs().max() <= 1  # tanh outputs
    (out.coarse.mean() + out.priors.mean() + out.sr.mean()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_prior_channels_are_heatmaps_then_parsing():
    net = FSRNet(num_landmarks=5, num_parsing=2, size=32).eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    priors = net(x).priors
    features = net.prior(net.coarse(x))
    torch.testing.assert_close(priors[:, :5], net.heatmap_head(features))
    torch.testing.assert_close(priors[:, 5:], net.parsing_head(features))


def test_configuration_errors():
    with pytest.raises(ValueError, match="prior channels"):
        FSRNet(num_landmarks=0, num_parsing=0)
    with pytest.raises(ValueError, match="does not fit"):
        FSRNet(size=40)
    with pytest.raises(ValueError, match=r"\[B,3,128,128\]"):
        FSRNet()(torch.zeros(1, 3, 16, 16))


def test_short_training_lowers_all_three_losses():
    torch.manual_seed(0)
    net = FSRNet(num_landmarks=4, num_parsing=0, size=32)
    hr = F.interpolate(torch.rand(2, 3, 8, 8) * 2 - 1, size=32, mode="bilinear")  # smooth faces
    x = F.interpolate(F.interpolate(hr, size=4, mode="area"), size=32, mode="bicubic")
    target = torch.rand(2, 4, 16, 16)
    opt = torch.optim.RMSprop(net.parameters(), lr=2.5e-4)
    first = last = None
    for _ in range(25):
        out = net(x)
        losses = torch.stack(
            [F.mse_loss(out.coarse, hr), F.mse_loss(out.sr, hr), F.mse_loss(out.priors, target)]
        )
        opt.zero_grad()
        losses.sum().backward()
        opt.step()
        first = losses.detach() if first is None else first
        last = losses.detach()
    # The untrained prior maps are large (hourglass sums), so the prior term dominates at first
    # and may pull the coarse face off for a while; the SR and prior terms must both fall.
    assert last.sum() < 0.5 * first.sum() and last[1] < first[1] and last[2] < first[2], (
        first,
        last,
    )


def test_safetensors_round_trip(tmp_path):
    net = FSRNet(num_parsing=0)
    net.train()(torch.rand(2, 3, 128, 128))
    net.eval()
    path = save_weights(net, tmp_path / "f.safetensors", {**net.config_dict(), "method": "fsrgan"})
    other = FSRNet(num_parsing=0).eval()
    assert load_weights(other, path, "fsrnet")["method"] == "fsrgan"
    lr = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(other.super_resolve(lr), net.super_resolve(lr), rtol=0, atol=0)
    with pytest.raises(WeightsError, match=r"unexpected keys \(parsing_head.bias"):
        load_weights(FSRNet(num_parsing=0), save_weights(FSRNet(), tmp_path / "g.safetensors",
                     FSRNet().config_dict()), "fsrnet")  # fmt: skip
