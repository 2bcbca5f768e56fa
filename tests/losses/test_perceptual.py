"""Perceptual loss: torchvision -> timm key mapping, input range, offline error."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from progface.losses.perceptual import (
    VGG16_WEIGHTS,
    PerceptualLoss,
    build_vgg16_features,
    vgg16_timm_state_dict,
)
from progface.weights import WeightsError


class TwoMaps(nn.Module):
    def forward(self, x):
        return [x, 2 * x]


class OneMap(nn.Module):
    def forward(self, x):
        return [x]


def test_sum_of_feature_mses_on_unit_range():
    loss = PerceptualLoss(layers=("relu1_2", "relu2_2"), vgg=TwoMaps())
    sr, hr = torch.ones(1, 3, 2, 2), -torch.ones(1, 3, 2, 2)  # [0, 1]: 1 and 0
    assert float(loss(sr, hr)) == pytest.approx(1 + 4)
    norm = PerceptualLoss(layers=("relu1_2",), vgg=OneMap(), imagenet_norm=True)
    x = torch.zeros(1, 3, 1, 1)  # 0.5 in [0, 1]
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(norm.features(x)[0].flatten(), (0.5 - mean) / std)


def test_torchvision_weights_load_into_timm_vgg16(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    sd = torchvision.models.vgg16(weights=None).state_dict()
    # keep every key of the real file; shrink the 120M classifier values (ignored by the loader)
    sd = {k: (v if k.startswith("features.") else torch.zeros(1)) for k, v in sd.items()}
    path = tmp_path / "vgg16-397923af.pth"
    torch.save(sd, path)
    vgg = build_vgg16_features(weights=path)
    mapped = vgg.state_dict()
    assert len(mapped) == 20  # 10 convs up to relu4_3
    for key, value in mapped.items():
        index, name = key.removeprefix("features_").split(".")
        assert torch.equal(value, sd[f"features.{index}.{name}"]), key
    # timm's post-ReLU maps equal slicing torchvision's features at 4, 9, 16, 23
    tv = torchvision.models.vgg16(weights=None).features
    tv.load_state_dict({k.removeprefix("features."): v for k, v in sd.items() if "features" in k})
    x = torch.rand(1, 3, 32, 32)
    ours = vgg(x)
    with torch.no_grad():
        h, outs = x, []
        for i, layer in enumerate(tv[:23]):
            h = layer(h)
            if i in (3, 8, 15, 22):
                outs.append(h.clone())
    for a, b in zip(ours, outs, strict=True):
        torch.testing.assert_close(a, b)
    assert not any(p.requires_grad for p in vgg.parameters()) and not vgg.training
    single = build_vgg16_features(("relu2_2",), weights=path)
    assert [tuple(f.shape) for f in single(x)] == [(1, 128, 16, 16)]


def test_key_mapping_drops_classifier_and_deeper_layers():
    sd = {"features.0.weight": torch.ones(1), "features.28.bias": torch.ones(1),
          "classifier.0.weight": torch.ones(1)}  # fmt: skip
    assert list(vgg16_timm_state_dict(sd, 22)) == ["features_0.weight"]


def test_offline_error_names_file_url_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROGFACE_HOME", str(tmp_path))
    monkeypatch.setenv("PROGFACE_OFFLINE", "1")
    with pytest.raises(WeightsError) as info:
        build_vgg16_features()
    msg = str(info.value)
    assert VGG16_WEIGHTS.filename in msg and VGG16_WEIGHTS.url in msg
    assert str(tmp_path / VGG16_WEIGHTS.filename) in msg


def test_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"features.0.weight": torch.ones(1), "obj": nn.ReLU()}, path)
    with pytest.raises(WeightsError, match="not a plain tensor state dict"):
        build_vgg16_features(weights=path)
