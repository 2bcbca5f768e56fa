from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from progface.data.degrade import (
    DegradationChain,
    degrade_chain,
    prepare_hr,
    quantize_uint8,
    resize_to,
)
from progface.io.images import load_image


def _to_tensor(arrays: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255


def _pil_chain(images: list[Image.Image], sizes=(64, 32, 16)) -> list[torch.Tensor]:
    """The authors' chain: PIL bilinear, each stage from the previous uint8 image."""
    stages: dict[int, list[np.ndarray]] = {s: [] for s in sizes}
    for img in images:
        for s in sizes:
            img = img.resize((s, s), Image.BILINEAR)
            stages[s].append(np.asarray(img))
    return [_to_tensor(stages[s]) for s in sizes]


def _parity(hr: torch.Tensor, images: list[Image.Image]) -> list[tuple[int, float, float]]:
    ours = degrade_chain(hr, quantize=True)
    report = []
    for size, a, b in zip((64, 32, 16), ours, _pil_chain(images), strict=True):
        diff = (a - b).abs() * 255
        report.append((size, diff.mean().item(), diff.max().item()))
    return report


def _check_parity(report):
    for size, mean, worst in report:
        assert mean < 0.5, f"{size} px: mean abs diff {mean:.3f}/255"
        assert worst <= 3 + 1e-3, f"{size} px: max abs diff {worst:.1f}/255"


def test_chain_matches_pil_on_synthetic_images(make_smooth):
    arrays = [make_smooth(128, 128, seed) for seed in range(8)]
    report = _parity(_to_tensor(arrays), [Image.fromarray(a) for a in arrays])
    print("synthetic PIL parity (size, mean/255, max/255):", report)
    _check_parity(report)


def test_chain_matches_pil_on_real_faces(faces_dir: Path):
    files = sorted((faces_dir / "val" / "celeba_heldout_ids").glob("*.png"))[:50]
    if len(files) < 50:
        pytest.skip(f"expected 50 images in celeba_heldout_ids, found {len(files)}")
    hr = torch.stack([load_image(f) for f in files])
    report = _parity(hr, [Image.open(f).convert("RGB") for f in files])
    print("real-face PIL parity (size, mean/255, max/255):", report)
    _check_parity(report)


def test_prepare_hr_matches_pil_celeba_crop(make_smooth):
    """The authors' HR: CenterCrop(178) of 178x218, then PIL bilinear Resize(128)."""
    arrays = [make_smooth(218, 178, seed) for seed in range(4)]
    ours = torch.stack([prepare_hr(_to_tensor([a])[0], "celeba") for a in arrays])
    ref = _to_tensor(
        [
            np.asarray(
                Image.fromarray(a).crop((0, 20, 178, 198)).resize((128, 128), Image.BILINEAR)
            )
            for a in arrays
        ]
    )
    diff = (ours - ref).abs() * 255
    assert ours.shape == (4, 3, 128, 128)
    assert diff.mean() < 0.5 and diff.max() <= 2 + 1e-3


def test_chain_is_chained_not_direct(make_smooth):
    hr = _to_tensor([make_smooth(128, 128, 3)])
    chained = degrade_chain(hr)[-1]
    direct = resize_to(hr, 16)
    two_step = resize_to(resize_to(resize_to(hr, 64), 32), 16)
    assert torch.allclose(chained, two_step)
    assert (chained - direct).abs().max() * 255 > 1  # the two really differ


def test_shapes_module_and_constant_image():
    hr = torch.full((2, 3, 128, 128), 0.31)
    outs = DegradationChain()(hr)
    assert [tuple(o.shape) for o in outs] == [(2, 3, 64, 64), (2, 3, 32, 32), (2, 3, 16, 16)]
    assert all(torch.allclose(o, torch.full_like(o, 0.31)) for o in outs)  # filter sums to 1
    q = DegradationChain(quantize=True)(hr)[-1]
    assert torch.allclose(q, torch.full_like(q, 79 / 255))  # round(0.31 * 255) = round(79.05)
    assert "sizes=(64, 32, 16), quantize=True" in repr(DegradationChain(quantize=True))


def test_quantize_values_on_uint8_grid():
    x = torch.tensor([-0.2, 0.0, 0.5 / 255 - 1e-4, 1.49 / 255, 0.5, 1.3])
    assert torch.allclose(quantize_uint8(x) * 255, torch.tensor([0.0, 0, 0, 1, 128, 255]))


@pytest.mark.parametrize("quantize", [False, True])
def test_gradients_flow(quantize, make_smooth):
    hr = _to_tensor([make_smooth(128, 128, 5)]).requires_grad_(True)
    outs = degrade_chain(hr, quantize=quantize)
    sum(o.square().sum() for o in outs).backward()
    assert hr.grad is not None and torch.isfinite(hr.grad).all()
    assert hr.grad.abs().sum() > 0


def test_straight_through_gradient_is_identity():
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    quantize_uint8(x).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_gradcheck_unquantized():
    x = torch.rand(1, 2, 16, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: tuple(degrade_chain(t, (8, 4, 2))), (x,))


def test_input_validation():
    with pytest.raises(ValueError, match=r"\[B, C, H, W\], got shape \(3, 128, 128\)"):
        degrade_chain(torch.rand(3, 128, 128))
    with pytest.raises(ValueError, match="floating-point tensor in \\[0, 1\\], got torch.uint8"):
        resize_to(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 4)
    with pytest.raises(ValueError, match=r"\[C, H, W\]"):
        prepare_hr(torch.rand(1, 3, 8, 8), "none")
    with pytest.raises(ValueError, match="at least one size"):
        degrade_chain(torch.rand(1, 3, 8, 8), ())
