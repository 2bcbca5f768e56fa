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
    """The critic's objective (registered loss ``wgan-gp``): ``forward(sr, hr, batch=None)`` is
    :func:`wgan_gp_d_loss` of ``critic`` with ``hr`` as real and ``sr`` (detached) as fake.
    It is what a critic minimises, not a generator term; ``terms`` keeps the last call's
    unweighted terms."""

    def __init__(self, critic: Critic, gp_weight: float = 10.0, drift: float = 0.001) -> None:
        super().__init__()
        self.critic, self.gp_weight, self.drift = critic, gp_weight, drift
        self.terms: dict[str, torch.Tensor] = {}

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, batch=None) -> torch.Tensor:
        loss, self.terms = wgan_gp_d_loss(self.critic, hr, sr, self.gp_weight, self.drift)
        return loss


class WGANGeneratorLoss(nn.Module):
    """The generator's adversarial term (registered loss ``adversarial``, alias ``wgan``):
    ``forward(sr, hr, batch=None)`` = :func:`wgan_g_loss` of ``critic(sr)``."""

    def __init__(self, critic: Critic) -> None:
        super().__init__()
        self.critic = critic

    def forward(self, sr: torch.Tensor, hr: torch.Tensor | None = None, batch=None):
        return wgan_g_loss(self.critic(sr))
