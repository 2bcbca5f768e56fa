"""The distilled FAN: parameter count, the authors' key layout, shapes."""

from __future__ import annotations

import pytest
import torch

from progface.landmarks.fan_distilled import NUM_PARAMETERS, FanDistilled

# official_implementation.md section 5: the 25 state-dict entries of the authors' checkpoint
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
EXPECTED = (
    [("conv.weight", (32, 3, 5, 5)), ("conv.bias", (32,))]
    + [("layers.0.weight", (64, 32, 3, 3)), ("layers.0.bias", (64,))]
    + [(f"layers.1.{k}", () if k == "num_batches_tracked" else (64,)) for k in BN]
    + [("layers.3.weight", (128, 64, 3, 3)), ("layers.3.bias", (128,))]
    + [(f"layers.4.{k}", () if k == "num_batches_tracked" else (128,)) for k in BN]
    + [("layers.6.weight", (128, 128, 3, 3)), ("layers.6.bias", (128,))]
    + [(f"layers.7.{k}", () if k == "num_batches_tracked" else (128,)) for k in BN]
    + [("layers.9.weight", (68, 128, 3, 3)), ("layers.9.bias", (68,))]
)


def test_parameter_count_is_the_papers():
    model = FanDistilled()
    assert sum(p.numel() for p in model.parameters()) == NUM_PARAMETERS == 321_412


def test_every_key_and_shape_in_order():
    got = [(k, tuple(v.shape)) for k, v in FanDistilled().state_dict().items()]
    assert got == EXPECTED


def test_heatmaps_at_the_input_resolution():
    model = FanDistilled().eval()
    for size in (64, 128, 37):
        x = torch.rand(2, 3, size, size)
        with torch.no_grad():
            out = model(x)
            feats = model.forward_features(x)
        assert out.shape == (2, 68, size, size)
        assert feats.shape == (2, 128, size, size)
        assert torch.equal(model.forward_head(feats), out)
    # the final LeakyReLU(0.01): negative outputs are 1/100 of the conv's
    conv_out = model.layers[9](feats)
    assert torch.allclose(out, torch.where(conv_out > 0, conv_out, 0.01 * conv_out))


def test_receptive_field_is_13_px():
    model = FanDistilled().eval()
    x = torch.zeros(1, 3, 41, 41, requires_grad=True)
    model(x)[0, :, 20, 20].sum().backward()
    touched = (x.grad.abs().sum(dim=(0, 1)) > 0).nonzero()
    assert touched[:, 0].min() == 14 and touched[:, 0].max() == 26  # 20 +- 6


def test_rejects_wrong_input():
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        FanDistilled()(torch.rand(1, 1, 64, 64))
