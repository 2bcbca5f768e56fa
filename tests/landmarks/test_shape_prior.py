"""The aligned-face shape prior: fitted statistics, the Gaussian maps, what it does to peaks,
its round trip through a weight file's config, and the sources that use it."""

from __future__ import annotations

import math

import pytest
import torch

from progface.landmarks.heatmaps import decode_heatmaps, render_heatmaps
from progface.landmarks.shape_prior import ShapePrior
from progface.landmarks.sources import FanDistilledSource


def test_fit_gives_the_mean_and_the_per_axis_spread():
    # two faces, one landmark: x in {10, 14}, y in {20, 20} -> mean (12, 20); sample stds
    # (2 * sqrt(2), 0) -> per-axis RMS sqrt(((2 sqrt 2)^2 + 0) / 2) = 2
    points = torch.tensor([[[10.0, 20.0]], [[14.0, 20.0]]])
    prior = ShapePrior.from_points(points, frame=64, spread=1.5)
    assert prior.mean.tolist() == [[12.0, 20.0]]
    assert prior.std.item() == pytest.approx(2.0)
    assert (prior.frame, prior.spread) == (64, 1.5)


def test_maps_are_gaussians_at_the_mean_scaled_with_the_frame():
    prior = ShapePrior(torch.tensor([[10.0, 20.0]]), torch.tensor([2.0]), frame=64, spread=1.0)
    m = prior.maps(64)
    assert m.shape == (1, 64, 64) and m[0, 20, 10].item() == 1.0
    assert m[0, 20, 12].item() == pytest.approx(math.exp(-4 / 8))  # 2 px at sigma 2
    assert m[0, 23, 10].item() == pytest.approx(math.exp(-9 / 8))
    # at 128 px the centre moves to (20.5, 40.5) and sigma doubles to 4
    big = prior.maps(128)
    assert big[0, 40, 20].item() == pytest.approx(math.exp(-(0.25 + 0.25) / 32))


def test_far_false_peaks_are_suppressed_and_unseen_landmarks_fall_back_to_the_mean():
    prior = ShapePrior(torch.tensor([[20.0, 20.0], [40.0, 40.0]]), torch.tensor([2.0, 2.0]),
                       frame=64, spread=2.0)  # fmt: skip
    true = render_heatmaps(torch.tensor([[[22.0, 19.0], [0.0, 0.0]]]), 64, sigma=1.0) * 0.6
    false = render_heatmaps(torch.tensor([[[50.0, 10.0], [0.0, 0.0]]]), 64, sigma=1.0)
    heatmaps = true + false  # landmark 0: a weaker true peak and a stronger false one far off
    heatmaps[:, 1] = -0.01  # landmark 1: the network sees nothing (slightly negative)
    assert decode_heatmaps(heatmaps)[0, 0].tolist() == [50.0, 10.0]
    points = decode_heatmaps(prior.apply(heatmaps))[0]
    # the true peak wins; the prior's slope may move the quarter-pixel shift towards the mean
    assert (points[0] - torch.tensor([22.0, 19.0])).abs().max() <= 0.25
    assert points[1].tolist() == [40.0, 40.0]


def test_config_round_trip_and_bad_shapes():
    prior = ShapePrior(torch.tensor([[1.25, 2.5]]), torch.tensor([3.0]), frame=128, spread=2.0)
    again = ShapePrior.from_config(prior.to_config())
    assert torch.equal(again.mean, prior.mean) and torch.equal(again.std, prior.std)
    assert (again.frame, again.spread, again.floor) == (128, 2.0, prior.floor)
    with pytest.raises(ValueError, match=r"mean \[N, 2\]"):
        ShapePrior(torch.zeros(3, 3), torch.ones(3))
    with pytest.raises(ValueError, match="positive"):
        ShapePrior(torch.zeros(1, 2), torch.zeros(1))
    with pytest.raises(ValueError, match="square"):
        prior.apply(torch.zeros(1, 1, 8, 9))


def test_source_applies_the_prior_and_gradients_reach_the_images():
    torch.manual_seed(0)
    prior = ShapePrior(torch.full((68, 2), 31.5), torch.full((68,), 3.0), frame=64)
    raw, with_prior = FanDistilledSource(), FanDistilledSource(prior=prior)
    with_prior.net.load_state_dict(raw.net.state_dict())
    faces = torch.rand(2, 3, 64, 64, requires_grad=True)
    out = with_prior(faces)
    assert torch.allclose(out, prior.apply(raw(faces)))
    out.sum().backward()
    assert faces.grad is not None and faces.grad.abs().sum() > 0
