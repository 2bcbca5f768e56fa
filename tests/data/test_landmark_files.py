from __future__ import annotations

import numpy as np
import pytest

from progface.data.errors import LandmarkFileError
from progface.data.landmarks_io import LandmarkRecord, read_landmarks_csv, read_pts

HEADER = "file,landmarks_from," + ",".join(f"x{i},y{i}" for i in range(68))


def _row(name: str, source: str, points: np.ndarray | None) -> str:
    cells = [""] * 136 if points is None else [f"{v:.2f}" for v in points.reshape(-1)]
    return ",".join([name, source, *cells])


def _points(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 128, size=(68, 2)).round(2)


def test_csv_reads_rows_and_skips_none(tmp_path):
    a, b = _points(0), _points(1)
    lines = [HEADER, _row("a.png", "gt_300w", a), _row("c.jpg", "none", None)]
    lines += [_row("b.jpg", "dlib_det", b), ""]
    (tmp_path / "landmarks68.csv").write_text("\n".join(lines))
    table = read_landmarks_csv(tmp_path / "landmarks68.csv")
    assert sorted(table) == ["a.png", "b.jpg"]
    assert isinstance(table["a.png"], LandmarkRecord)
    assert table["a.png"].source == "gt_300w" and table["b.jpg"].source == "dlib_det"
    assert table["a.png"].points.dtype == np.float32 and table["a.png"].points.shape == (68, 2)
    assert np.allclose(table["b.jpg"].points, b, atol=1e-4)
    assert table["a.png"].points[3].tolist() == pytest.approx(a[3].tolist(), abs=1e-4)


@pytest.mark.parametrize(
    ("body", "where", "reason"),
    [
        ("file,source,x0,y0\n", ":1:", "header must start with"),
        (HEADER + "\n" + "a.png,gt_300w,1,2\n", ":2:", "expected 138 columns, got 4"),
        (HEADER + "\n" + "a.png,gt," + ",".join(["1"] * 135) + ",z\n", ":2:", "y67: not a number"),
        (HEADER + "\n" + "a.png,gt," + ",".join(["1"] * 135) + ",\n", ":2:", "some coordinates"),
        (HEADER + "\n" + ("a.png,gt," + ",".join(["1"] * 136) + "\n") * 2, ":3:", "listed twice"),
        ("", "", "empty file"),
    ],
)
def test_csv_errors_name_file_and_line(tmp_path, body, where, reason):
    path = tmp_path / "landmarks68.csv"
    path.write_text(body)
    with pytest.raises(LandmarkFileError) as info:
        read_landmarks_csv(path)
    assert str(info.value).startswith(f"{path}{where}")
    assert reason in str(info.value)


def _pts_text(points: np.ndarray) -> str:
    body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in points)
    return f"version: 1\nn_points:  {len(points)}\n{{\n{body}\n}}\n"


def test_pts_round_trip(tmp_path):
    pts = _points(2)
    (tmp_path / "a.pts").write_text(_pts_text(pts))
    out = read_pts(tmp_path / "a.pts")
    assert out.dtype == np.float32 and out.shape == (68, 2)
    assert np.allclose(out, pts, atol=1e-4)


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ("version: 1\nn_points: 3\n{\n1 2\n3 4\n}\n", ":6:", "n_points is 3 but 2 points"),
        ("version: 1\nn_points: 1\n{\n1 2 3\n}\n", ":4:", "expected 'x y'"),
        ("version: 1\nn_points: 1\n{\n1 b\n}\n", ":4:", "column y: not a number"),
        ("version: 1\n{\n1 2\n}\n", ":2:", "'{' before the 'n_points:' line"),
        ("version: 1\nn_points: 1\n{\n1 2\n", ":4:", "missing closing '}'"),
        ("hello\n", ":1:", "unexpected header line"),
    ],
)
def test_pts_errors_name_file_and_line(tmp_path, text, where, reason):
    path = tmp_path / "bad.pts"
    path.write_text(text)
    with pytest.raises(LandmarkFileError) as info:
        read_pts(path)
    assert str(info.value).startswith(f"{path}{where}")
    assert reason in str(info.value)


def test_missing_landmark_files(tmp_path):
    with pytest.raises(LandmarkFileError, match="no such file"):
        read_pts(tmp_path / "x.pts")
    with pytest.raises(LandmarkFileError, match="no such file"):
        read_landmarks_csv(tmp_path / "x.csv")


def test_real_landmark_files(faces_dir):
    helen = faces_dir / "val" / "helen_test"
    table = read_landmarks_csv(helen / "landmarks68.csv")
    assert len(table) == 185
    assert {r.source for r in table.values()} == {"gt_300w"}
    points = np.stack([r.points for r in table.values()])
    assert points.shape == (185, 68, 2)
    assert points.min() >= 0 and points.max() < 128  # aligned, annotated faces lie inside
    for pts_file in sorted(helen.glob("*.pts"))[:20]:
        pts = read_pts(pts_file)
        assert pts.shape == (68, 2)
        # the CSV holds the same coordinates, rounded to 2 decimals
        assert np.abs(pts - table[pts_file.with_suffix(".png").name].points).max() < 0.006
    # dlib landmarks of CelebA may reach a little past the frame (chins), never far
    celeba = read_landmarks_csv(faces_dir / "val" / "celeba_heldout_ids" / "landmarks68.csv")
    cpoints = np.stack([r.points for r in celeba.values()])
    assert cpoints.shape[1:] == (68, 2) and len(celeba) > 800
    assert cpoints.min() > -16 and cpoints.max() < 144
    assert ((cpoints >= 0) & (cpoints < 128)).all(axis=(1, 2)).mean() > 0.9


def test_photo_landmarks_several_faces_per_photo_and_bad_rows(tmp_path):
    from progface.data.landmarks_io import read_photo_landmarks

    header = "file,face," + ",".join(f"x{i},y{i}" for i in range(68))
    row = lambda name, face, v: f"{name},{face}," + ",".join([str(v)] * 136)  # noqa: E731
    path = tmp_path / "landmarks68.csv"
    path.write_text(
        "\n".join([header, row("a.jpg", 0, 1.5), row("a.jpg", 1, 2), row("b.jpg", 0, 3)])
    )
    faces = read_photo_landmarks(path)
    assert sorted(faces) == ["a.jpg", "b.jpg"] and len(faces["a.jpg"]) == 2
    assert faces["a.jpg"][1].shape == (68, 2) and float(faces["a.jpg"][1][5, 0]) == 2.0
    path.write_text("\n".join([header, row("a.jpg", 0, 1)[:-2]]))
    with pytest.raises(
        LandmarkFileError, match=r"landmarks68.csv:2: expected 138 columns, got 137"
    ):
        read_photo_landmarks(path)
