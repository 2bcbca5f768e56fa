"""The pose, size and error functions of ``benchmarks/landmarks_robustness.py`` on synthetic
landmarks with hand-computed answers (no shared data needed)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "landmarks_robustness.py"


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("landmarks_robustness", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def face(nose_shift: float = 0.0, angle_deg: float = 0.0) -> torch.Tensor:
    """68 points ``[1, 68, 2]``: outer eye corners 40 px apart at y = 60, the nose tip 20 px
    below their midpoint, shifted by ``nose_shift`` inter-ocular distances towards landmark 45;
    the whole face rotated by ``angle_deg`` about the eye midpoint."""
    pts = torch.zeros(68, 2)
    pts[:] = torch.tensor([64.0, 70.0])
    pts[36] = torch.tensor([44.0, 60.0])
    pts[45] = torch.tensor([84.0, 60.0])
    pts[30] = torch.tensor([64.0 + 40.0 * nose_shift, 80.0])
    a = math.radians(angle_deg)
    rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    centre = torch.tensor([64.0, 60.0])
    return ((pts - centre) @ rot.T + centre)[None]


def test_yaw_proxy_of_symmetric_and_shifted_faces(report):
    assert report.yaw_proxy(face()).item() == pytest.approx(0.0, abs=1e-6)
    assert report.yaw_proxy(face(0.2)).item() == pytest.approx(0.2, abs=1e-6)
    assert report.yaw_proxy(face(-0.3)).item() == pytest.approx(-0.3, abs=1e-6)


def test_yaw_proxy_ignores_roll(report):
    assert report.yaw_proxy(face(0.2, angle_deg=20)).item() == pytest.approx(0.2, abs=1e-5)


def test_roll_and_inter_ocular(report):
    assert report.roll_degrees(face()).item() == pytest.approx(0.0, abs=1e-6)
    assert report.roll_degrees(face(angle_deg=10)).item() == pytest.approx(10.0, abs=1e-4)
    assert report.roll_degrees(face(angle_deg=-7)).item() == pytest.approx(-7.0, abs=1e-4)
    assert report.inter_ocular(face(angle_deg=33)).item() == pytest.approx(40.0, abs=1e-4)


def test_buckets_include_their_lower_edge(report):
    yaw = torch.tensor([0.0, 0.05, 0.1, 0.2, 0.25, 0.6])
    assert report.bucket_of(yaw, report.YAW_EDGES).tolist() == [0, 0, 1, 1, 2, 2]
    roll = torch.tensor([4.9, 5.0, 14.0, 15.0, 40.0])
    assert report.bucket_of(roll, report.ROLL_EDGES).tolist() == [0, 1, 1, 2, 2]


def test_face_buckets_use_absolute_yaw_and_roll(report):
    points = torch.cat([face(0.0, 0), face(-0.2, -10), face(0.3, 20)])
    buckets, proxies = report.face_buckets(points)
    yaw, roll, _ = buckets
    assert yaw.index.tolist() == [0, 1, 2]
    assert roll.index.tolist() == [0, 1, 2]
    assert proxies["yaw_proxy"] == pytest.approx([0.0, -0.2, 0.3], abs=1e-5)


def test_size_terciles_and_their_px_ranges(report):
    iod = torch.arange(30.0, 39.0)  # 30..38 px, nine faces
    index, names, edges = report.size_buckets(iod)
    assert index.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert edges == pytest.approx([32 + 2 / 3, 35 + 1 / 3])
    assert names == ["small (30.0-32.0 px)", "medium (33.0-35.0 px)", "large (36.0-38.0 px)"]


def test_point_errors_groups_and_gross_share(report):
    labels = face()
    pred = labels.clone()
    pred[0, 0, 0] += 20.0  # a jaw point half an inter-ocular distance off: gross
    pred[0, 50, 1] += 4.0  # a mouth point 0.1 off
    run = report.Run("x", 64, pred, report.point_errors(pred, labels))
    assert run.errors[0, 0].item() == pytest.approx(0.5)
    assert run.nme.item() == pytest.approx(0.6 / 68)
    groups = report.by_group(run)
    assert groups["jaw"] == pytest.approx(100 * 0.5 / 17)
    assert groups["mouth"] == pytest.approx(100 * 0.1 / 20)
    assert groups["eyes"] == 0.0
    stats = report.summary(run, 128, labels)
    assert stats["gross_points_pct"] == pytest.approx(100 / 68)
    assert stats["faces_with_gross_pct"] == 100.0
    assert stats["nme_size_pct"] == pytest.approx(100 * 24 / 68 / 128)


def test_empty_bucket_is_none(report):
    labels = torch.cat([face(), face(0.2)])
    run = report.Run("x", 64, labels, report.point_errors(labels, labels))
    buckets = report.Buckets("yaw", list(report.YAW_NAMES), torch.tensor([0, 1]))
    assert report.by_bucket(run, buckets) == [0.0, 0.0, None]
    assert "| – |" in report.bucket_table([run], buckets, [report.by_bucket(run, buckets)])


@pytest.mark.parametrize(
    ("text", "label", "name", "weights"),
    [
        ("fan-distilled", "fan-distilled", "fan-distilled", None),
        ("fan-distilled=/w/best.safetensors", "fan-distilled-best", "fan-distilled",
         "/w/best.safetensors"),
        ("new:fan-distilled=/w/x.safetensors", "new", "fan-distilled", "/w/x.safetensors"),
        ("old:dlib68", "old", "dlib68", None),
    ],
)  # fmt: skip
def test_parse_source(report, text, label, name, weights):
    arg = report.parse_source(text)
    assert (arg.label, arg.name, arg.weights) == (label, name, weights)


def test_parse_source_rejects_empty_parts(report):
    import argparse

    for text in ("", "new:", "fan-distilled="):
        with pytest.raises(argparse.ArgumentTypeError):
            report.parse_source(text)


def test_markdown_cells_escape_pipes(report):
    table = report.md_table(["bucket", "n"], [["frontal |r| < 0.1", "3"]])
    assert table.splitlines()[2] == "| frontal \\|r\\| < 0.1 | 3 |"
