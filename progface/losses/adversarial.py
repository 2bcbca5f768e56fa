"""WGAN-GP (Gulrajani et al. 2017) with the drift term, as the authors trained D and G.

D minimises ``mean D(fake) - mean D(real) + drift * mean D(real)^2 + gp_weight * GP`` with
``GP = mean (||grad_x D(x_hat)||_2 - 1)^2`` at ``x_hat = eps * real + (1 - eps) * fake``,
``eps ~ U(0, 1)`` per image; G minimises ``-mean D(fake)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Critic = Callable[[torch.Tensor], torch.Tensor]


def gradient_penalty(
    critic: Critic, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor | None = None
) -> torch.Tensor:
    """Two-sided penalty ``mean_i (||grad D(x_hat_i)|| - 1)^2`` (differentiable for D's step).

    ``eps`` ([B] in [0, 1]) defaults to fresh uniform draws from the global RNG.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake shapes differ: {tuple(real.shape)} vs {tuple(fake.shape)}")
    if eps is None:
        eps = torch.rand(real.shape[0], device=real.device, dtype=real.dtype)
    eps = eps.view(-1, *([1] * (real.ndim - 1)))
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def wgan_gp_d_loss(
    critic: Critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    gp_weight: float = 10.0,
    drift: float = 0.001,
    eps: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The critic's loss and its terms (``wasserstein``, ``drift``, ``gp``, unweighted)."""
    real_scores, fake_scores = critic(real), critic(fake.detach())
    terms = {
        "wasserstein": fake_scores.mean() - real_scores.mean(),
        "drift": real_scores.pow(2).mean(),
        "gp": gradient_penalty(critic, real, fake, eps) if gp_weight else real.new_zeros(()),
    }
    loss = terms["wasserstein"] + drift * terms["drift"] + gp_weight * terms["gp"]
    return loss, terms


def wgan_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial loss ``-mean D(fake)``."""
    return -fake_scores.mean()


class WGANGPDiscriminatorLoss(nn.Module):
    """Module form of :func:`wgan_gp_d_loss`; ``forward(critic, real, fake)`` -> (loss, terms)."""

    def __init__(self, gp_weight: float = 10.0, drift: float = 0.001) -> None:
        super().__init__()
        self.gp_weight, self.drift = gp_weight, drift

    def forward(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor):
        return wgan_gp_d_loss(critic, real, fake, self.gp_weight, self.drift)


class WGANGeneratorLoss(nn.Module):
    """Module form of :func:`wgan_g_loss`; ``forward(fake_scores)``."""

    def forward(self, fake_scores: torch.Tensor) -> torch.Tensor:
        return wgan_g_loss(fake_scores)
