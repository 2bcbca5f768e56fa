"""The five losses against hand-computed values on tiny tensors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from progface.losses.adversarial import gradient_penalty, wgan_g_loss, wgan_gp_d_loss
from progface.losses.attention import AttentionLoss, attention_loss, attention_map
from progface.losses.heatmap import HeatmapLoss, heatmap_loss, normalize_heatmaps
from progface.losses.pixel import PixelLoss, pixel_loss
from tests.losses.toy_source import TinySource


def test_pixel_l1_and_mse():
    sr = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2)
    hr = torch.zeros_like(sr)
    assert float(pixel_loss(sr, hr, "l1")) == 2.5
    assert float(pixel_loss(sr, hr, "mse")) == 7.5  # (1 + 4 + 9 + 16) / 4
    assert float(PixelLoss("mse")(sr, hr)) == 7.5
    with pytest.raises(ValueError, match="shapes differ"):
        pixel_loss(sr, hr[..., :1])
    with pytest.raises(ValueError, match="kind"):
        PixelLoss("l3")


class Linear1px(nn.Module):
    """D(x) = w * x on 1-pixel images: the input gradient has norm |w| everywhere."""

    def __init__(self, w: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, x):
        return self.w * x.flatten(1).sum(1)


def test_wgan_gp_discriminator_loss_by_hand():
    critic = Linear1px(3.0)
    real = torch.tensor([1.0, 2.0]).view(2, 1, 1, 1)
    fake = torch.tensor([0.0, -1.0]).view(2, 1, 1, 1)
    loss, terms = wgan_gp_d_loss(critic, real, fake, gp_weight=10, drift=0.001)
    loss, terms = loss.detach(), {k: v.detach() for k, v in terms.items()}
    assert float(terms["wasserstein"]) == pytest.approx(-1.5 - 4.5)  # mean D(fake) - mean D(real)
    assert float(terms["drift"]) == pytest.approx((9 + 36) / 2)
    assert float(terms["gp"]) == pytest.approx(4.0)  # (|w| - 1)^2
    assert float(loss) == pytest.approx(-6 + 0.001 * 22.5 + 10 * 4)
    # the penalty is differentiable in D's parameters: dGP/dw = 2 (w - 1) = 4
    critic.w.grad = None
    gradient_penalty(critic, real, fake).backward()
    assert float(critic.w.grad) == pytest.approx(4.0)


def test_gradient_penalty_nonlinear_critic_with_fixed_eps():
    critic = lambda x: x.pow(2).flatten(1).sum(1)  # noqa: E731  grad = 2 x_hat
    real = torch.tensor([[3.0, 4.0], [1.0, 0.0]]).view(2, 1, 1, 2)
    fake = torch.zeros_like(real)
    eps = torch.tensor([0.5, 1.0])
    # x_hat = eps * real: norms 2 * ||x_hat|| = 2 * 2.5 = 5 and 2 * 1 = 2
    expected = ((5 - 1) ** 2 + (2 - 1) ** 2) / 2
    assert float(gradient_penalty(critic, real, fake, eps).detach()) == pytest.approx(expected)


def test_wgan_generator_loss():
    assert float(wgan_g_loss(torch.tensor([1.0, -3.0, 5.0]))) == pytest.approx(-1.0)


def test_heatmap_loss_by_hand():
    real = torch.tensor([0.0, 1.0, 2.0, 3.0]).view(1, 2, 1, 2)
    fake = torch.tensor([1.0, 1.0, 1.0, 5.0]).view(1, 2, 1, 2)
    torch.testing.assert_close(
        normalize_heatmaps(real).flatten(), torch.tensor([0, 1 / 3, 2 / 3, 1])
    )
    # each side normalised by its own min/max: fake -> [0, 0, 0, 1]
    assert float(heatmap_loss(fake, real)) == pytest.approx((0 + 1 / 9 + 4 / 9 + 0) / 4)


def test_attention_loss_by_hand():
    real = torch.zeros(1, 2, 2, 2)
    real[0, 0, 0, 1] = 4.0
    real[0, 1, 1, 0] = 2.0
    att = attention_map(real)
    torch.testing.assert_close(att, torch.tensor([[[[0.0, 1.0], [0.5, 0.0]]]]))
    sr = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).expand(1, 3, 2, 2)
    hr = torch.zeros(1, 3, 2, 2)
    # M* * |sr - hr| = [[0, 2], [1.5, 0]] per channel; mean over 3 x 2 x 2
    assert float(attention_loss(sr, hr, att)) == pytest.approx(3 * 3.5 / 12)
    # a smaller attention map is resized to the image (constant stays constant)
    assert float(attention_loss(sr, hr, torch.full((1, 1, 1, 1), 0.5))) == pytest.approx(1.25)


def test_losses_freeze_the_source_and_pass_gradients_to_sr():
    torch.manual_seed(0)
    source = TinySource().train()
    before = {k: v.clone() for k, v in source.state_dict().items()}
    hm, att = HeatmapLoss(source), AttentionLoss(source)
    hm.train(), att.train()  # the trainer calls train(); the source must stay frozen
    assert not source.training and not any(p.requires_grad for p in source.parameters())
    hr = torch.rand(2, 3, 8, 8) * 2 - 1
    sr = (torch.rand(2, 3, 8, 8) * 2 - 1).requires_grad_(True)
    (hm(sr, hr) + att(sr, hr)).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None for p in source.parameters())
    for k, v in source.state_dict().items():  # eval-mode BN: running stats untouched
        assert torch.equal(v, before[k]), k
    # the source sees images in [0, 1]: its heatmaps of hr equal the loss's real heatmaps
    torch.testing.assert_close(hm.real_heatmaps(hr), source(0.5 * hr + 0.5))
    # values: the modules equal the functions on the source's heatmaps
    real = source(0.5 * hr + 0.5)
    fake = source(0.5 * sr.detach() + 0.5)
    torch.testing.assert_close(hm(sr.detach(), hr), heatmap_loss(fake, real))
    torch.testing.assert_close(
        att(sr.detach(), hr), attention_loss(sr.detach(), hr, attention_map(real))
    )


def test_source_api_is_checked():
    with pytest.raises(TypeError, match="num_landmarks"):
        HeatmapLoss(nn.Conv2d(3, 3, 1))
    bad = TinySource(5)
    bad.num_landmarks = 7
    with pytest.raises(ValueError, match="expected"):
        HeatmapLoss(bad)(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
