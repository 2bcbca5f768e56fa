"""FAN-4: parameter count, face-alignment's key layout, and the oracle under the same weights."""

from __future__ import annotations

import pytest
import torch

from progface.landmarks.fan import FAN, NUM_PARAMETERS, ConvBlock, HourGlass


@pytest.fixture(scope="module")
def fan4() -> FAN:
    torch.manual_seed(0)
    return FAN().eval()


def test_parameter_count_and_state_dict_size(fan4):
    assert sum(p.numel() for p in fan4.parameters()) == NUM_PARAMETERS == 23_820_176
    sd = fan4.state_dict()
    assert len(sd) == 1129
    assert len([k for k in sd if not k.endswith("num_batches_tracked")]) == 945
    assert (
        sum(v.numel() for k, v in sd.items() if not k.endswith("num_batches_tracked")) == 23_874_320
    )
    assert len(list(fan4.parameters())) == 577
    assert sum(isinstance(m, ConvBlock) for m in fan4.modules()) == 59


def test_block_parameter_counts():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ConvBlock(256, 256)) == 406_400
    assert count(ConvBlock(64, 128)) == 73_152
    assert count(ConvBlock(128, 128)) == 101_824
    assert count(ConvBlock(128, 256)) == 291_712
    assert count(HourGlass(4, 256)) == 5_283_200
    assert count(FAN(num_modules=1)) == 6_249_668
    assert count(FAN(num_modules=2)) == 12_106_504


def test_every_key_and_shape_against_the_reference_table(fan4, fan4_tsv):
    rows = [line.rstrip("\n").split("\t") for line in fan4_tsv.read_text().splitlines() if line]
    got = [(k, str(tuple(v.shape))) for k, v in fan4.state_dict().items()]
    assert len(rows) == 1129
    assert got == [(k, s) for k, s in rows]


def test_outputs_four_stacks_of_64px_heatmaps(fan4):
    x = torch.rand(1, 3, 64, 64)  # any multiple of 64 works; 256 is the real input size
    with torch.no_grad():
        feats, heatmaps = fan4.forward_stacks(x)
    assert len(heatmaps) == 4 and len(feats) == 4
    assert heatmaps[-1].shape == (1, 68, 16, 16) and feats[-1].shape == (1, 256, 16, 16)
    with torch.no_grad():
        assert torch.equal(fan4(x)[-1], heatmaps[-1])


def test_matches_face_alignment_under_the_same_random_weights(fan4):
    fa = pytest.importorskip(
        "face_alignment.models",
        reason="oracle face-alignment not installed (pip install face-alignment opencv-python-headless)",
    )
    theirs = fa.FAN(4).eval()
    sd = fan4.state_dict()
    gen = torch.Generator().manual_seed(3)
    for k, v in sd.items():  # non-trivial BN statistics so every branch matters
        if k.endswith("running_var"):
            v.copy_(torch.rand(v.shape, generator=gen) + 0.5)
        elif k.endswith("running_mean"):
            v.copy_(torch.randn(v.shape, generator=gen) * 0.1)
    theirs.load_state_dict(sd, strict=True)
    fan4.load_state_dict(sd, strict=True)
    x = torch.rand(2, 3, 128, 128, generator=gen)
    with torch.no_grad():
        ours, ref = fan4(x), theirs(x)
    assert len(ours) == len(ref) == 4
    for a, b in zip(ours, ref):
        assert torch.allclose(a, b, rtol=0, atol=1e-5)
