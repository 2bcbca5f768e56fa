from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from progface.models.urdgn import URDGNDiscriminator, URDGNGenerator
from progface.weights.generators import load_weights, save_weights


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def shapes(m: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}


def test_parameter_counts_match_reference():
    assert n_params(URDGNGenerator()) == 1_054_243
    assert n_params(URDGNDiscriminator()) == 6_859_425


def test_generator_every_state_dict_key_and_shape():
    expected = {}
    for i, (cin, cout, k) in zip(
        (0, 2, 4, 6), ((3, 16, 3), (16, 64, 3), (64, 128, 5), (128, 256, 5))
    ):
        expected |= {
            f"body.{i}.0.weight": (cout, cin, k, k), f"body.{i}.0.bias": (cout,),
            f"body.{i}.1.weight": (cout,), f"body.{i}.1.bias": (cout,),
            f"body.{i}.1.running_mean": (cout,), f"body.{i}.1.running_var": (cout,),
            f"body.{i}.1.num_batches_tracked": (),
        }  # fmt: skip
    expected |= {"head.weight": (3, 256, 5, 5), "head.bias": (3,)}
    assert shapes(URDGNGenerator()) == expected


def test_discriminator_every_state_dict_key_and_shape():
    expected = {}
    for i, (cin, cout) in zip((0, 4, 8, 12), ((3, 32), (32, 64), (64, 128), (128, 96))):
        expected |= {f"features.{i}.weight": (cout, cin, 5, 5), f"features.{i}.bias": (cout,)}
    expected |= {
        "classifier.1.weight": (1024, 6144), "classifier.1.bias": (1024,),
        "classifier.4.weight": (1, 1024), "classifier.4.bias": (1,),
    }  # fmt: skip
    assert shapes(URDGNDiscriminator()) == expected


def test_flops_match_reference():
    for model, x, gflops in (
        (URDGNGenerator(), torch.zeros(1, 3, 16, 16), 29.170),
        (URDGNDiscriminator(), torch.zeros(1, 3, 128, 128), 1.087),
    ):
        with FlopCounterMode(display=False) as counter:
            model.eval()(x)
        assert counter.get_total_flops() / 1e9 == pytest.approx(gflops, abs=1e-3)


def test_shapes_and_gradients_reach_every_parameter():
    g, d = URDGNGenerator(), URDGNDiscriminator()
    sr = g.super_resolve(torch.rand(2, 3, 16, 16))
    assert sr.shape == (2, 3, 128, 128)
    logits = d(sr * 2 - 1)
    assert logits.shape == (2,)
    F.binary_cross_entropy_with_logits(logits, torch.ones(2)).backward()
    for model in (g, d):
        for name, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name


def test_super_resolve_maps_unit_range_to_and_from_network_range():
    g = URDGNGenerator().eval()
    lr = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(g.super_resolve(lr), g(lr * 2 - 1) / 2 + 0.5)


def test_pool_relu_order_is_value_neutral():
    # The released D pools before the ReLU in three stages and after it in the last.
    d = URDGNDiscriminator().eval()
    kinds = [type(m).__name__ for m in d.features]
    assert kinds[1:3] == ["MaxPool2d", "ReLU"] and kinds[13:15] == ["ReLU", "MaxPool2d"]
    x = torch.randn(1, 32, 8, 8)
    torch.testing.assert_close(F.relu(F.max_pool2d(x, 2)), F.max_pool2d(F.relu(x), 2))


def test_input_validation():
    with pytest.raises(ValueError, match="128"):
        URDGNDiscriminator()(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="multiple of 16"):
        URDGNDiscriminator(size=40)
    with pytest.raises(ValueError):
        URDGNGenerator()(torch.zeros(1, 1, 16, 16))


def test_short_adversarial_training_moves_both_networks():
    # Small widths and 32 px outputs keep this fast; the update is the recipe's G and D step.
    torch.manual_seed(0)
    g = URDGNGenerator(widths=(8, 8, 8, 8))
    d = URDGNDiscriminator(size=32, hidden=32)
    hr = F.interpolate(torch.rand(4, 3, 8, 8) * 2 - 1, size=32, mode="bilinear")  # smooth faces
    lr = F.interpolate(hr, size=4, mode="area")
    opt_g = torch.optim.RMSprop(g.parameters(), lr=1e-3, alpha=0.9, eps=1e-8)
    opt_d = torch.optim.RMSprop(d.parameters(), lr=1e-3, alpha=0.9, eps=1e-8)
    d_before = [p.detach().clone() for p in d.parameters()]
    mse = []
    for _ in range(30):
        fake = g(lr)
        d_loss = F.binary_cross_entropy_with_logits(d(hr), torch.ones(4)) + (
            F.binary_cross_entropy_with_logits(d(fake.detach()), torch.zeros(4))
        )
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        pixel = F.mse_loss(fake, hr)
        adv = F.binary_cross_entropy_with_logits(d(fake), torch.ones(4))
        opt_g.zero_grad()
        (pixel + 0.01 * adv).backward()
        opt_g.step()
        mse.append(pixel.item())
    assert mse[-1] < 0.5 * mse[0]
    assert any(not torch.equal(a, b) for a, b in zip(d_before, d.parameters()))


def test_safetensors_round_trip(tmp_path):
    g = URDGNGenerator()
    g.train()(torch.rand(2, 3, 16, 16))  # move the BN running statistics off their defaults
    g.eval()
    path = save_weights(g, tmp_path / "g.safetensors", {**g.config_dict(), "method": "urdgn"})
    other = URDGNGenerator().eval()
    config = load_weights(other, path, "urdgn")
    assert config == {"architecture": "urdgn", "in_size": 16, "widths": [16, 64, 128, 256],
                      "method": "urdgn"}  # fmt: skip
    lr = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(other.super_resolve(lr), g.super_resolve(lr), rtol=0, atol=0)
