"""Landmark files: ``landmarks68.csv`` tables and 300-W ``.pts`` files.

Coordinates are returned as stored (float32 x, y): in the shared face data they are 0-based
pixel coordinates of the 128-px images, in iBUG 68-point order, for both formats (no 1-based
offset is applied to ``.pts`` files).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from progface.data.errors import LandmarkFileError

__all__ = ["LandmarkFileError", "LandmarkRecord", "read_landmarks_csv", "read_pts"]


@dataclass(frozen=True)
class LandmarkRecord:
    """Landmarks of one image: ``points`` [N, 2] float32 (x, y) and where they came from
    (``gt_300w``, ``dlib_det``, ``dlib_fallback_box`` ...)."""

    points: np.ndarray
    source: str


def _parse_float(text: str, path: Path, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise LandmarkFileError(path, line, f"column {column}: not a number: {text!r}") from None
    if not math.isfinite(value):
        raise LandmarkFileError(path, line, f"column {column}: not a finite number: {text!r}")
    return value


def _check_header(header: list[str], path: Path) -> int:
    """Validate ``file, landmarks_from, x0, y0, ...``; return the number of points."""
    if len(header) < 4 or header[:2] != ["file", "landmarks_from"]:
        raise LandmarkFileError(
            path,
            1,
            "header must start with 'file,landmarks_from,x0,y0,...', got " + ",".join(header[:4]),
        )
    coords = header[2:]
    if len(coords) % 2:
        raise LandmarkFileError(path, 1, f"odd number of coordinate columns ({len(coords)})")
    for i in range(len(coords) // 2):
        if coords[2 * i : 2 * i + 2] != [f"x{i}", f"y{i}"]:
            raise LandmarkFileError(
                path, 1, f"expected columns x{i},y{i}, got {','.join(coords[2 * i : 2 * i + 2])}"
            )
    return len(coords) // 2


def read_landmarks_csv(path: str | Path) -> dict[str, LandmarkRecord]:
    """Read a ``landmarks68.csv``: columns ``file, landmarks_from, x0, y0, ..., x67, y67``.

    Returns {file name: LandmarkRecord}. Rows with ``landmarks_from == none`` or with all
    coordinates empty are skipped. Malformed input (bad header, wrong column count, partly
    empty or non-numeric coordinates, a file listed twice) raises ``LandmarkFileError`` naming
    the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise LandmarkFileError(path, None, "no such file")
    records: dict[str, LandmarkRecord] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise LandmarkFileError(path, None, "empty file")
        n_points = _check_header([h.strip() for h in header], path)
        columns = [h.strip() for h in header[2:]]
        for row in reader:
            line = reader.line_num
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise LandmarkFileError(
                    path, line, f"expected {len(header)} columns, got {len(row)}"
                )
            name, source = row[0].strip(), row[1].strip()
            cells = [cell.strip() for cell in row[2:]]
            if source == "none" or not any(cells):
                continue
            if not name:
                raise LandmarkFileError(path, line, "empty file name")
            if not all(cells):
                raise LandmarkFileError(path, line, "some coordinates are empty, others not")
            values = [
                _parse_float(c, path, line, col) for c, col in zip(cells, columns, strict=True)
            ]
            if name in records:
                raise LandmarkFileError(path, line, f"file {name!r} is listed twice")
            points = np.asarray(values, dtype=np.float32).reshape(n_points, 2)
            records[name] = LandmarkRecord(points=points, source=source)
    return records


def read_photo_landmarks(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Read the photos' ``landmarks68.csv`` (``file, face, x0, y0, ..., x67, y67``: one row per
    annotated face, several per photo): ``{file: [float32 [68, 2] per face]}``. Malformed rows
    raise ``LandmarkFileError`` naming the line."""
    path = Path(path)
    if not path.is_file():
        raise LandmarkFileError(path, None, "no such file")
    faces: dict[str, list[np.ndarray]] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        rows = csv.reader(fh)
        next(rows, None)  # the header
        for line, row in enumerate(rows, start=2):
            if len(row) != 2 + 2 * 68:
                raise LandmarkFileError(
                    path, line, f"expected {2 + 2 * 68} columns, got {len(row)}"
                )
            values = [_parse_float(v, path, line, f"column {k + 3}") for k, v in enumerate(row[2:])]
            faces.setdefault(row[0], []).append(np.asarray(values, np.float32).reshape(68, 2))
    return faces


def read_pts(path: str | Path) -> np.ndarray:
    """Read a 300-W ``.pts`` file (``version: 1``, ``n_points: N``, ``{``, N lines ``x y``,
    ``}``) as float32 [N, 2]. Malformed files raise ``LandmarkFileError`` naming the line."""
    path = Path(path)
    if not path.is_file():
        raise LandmarkFileError(path, None, "no such file")
    lines = path.read_text(encoding="utf-8").splitlines()
    n_points: int | None = None
    opened_at: int | None = None
    points: list[tuple[float, float]] = []
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        if opened_at is None:
            key, _, value = text.partition(":")
            if text == "{":
                if n_points is None:
                    raise LandmarkFileError(path, number, "'{' before the 'n_points:' line")
                opened_at = number
            elif key.strip() == "n_points":
                try:
                    n_points = int(value)
                except ValueError:
                    raise LandmarkFileError(
                        path, number, f"n_points is not an integer: {value.strip()!r}"
                    ) from None
            elif key.strip() != "version":
                raise LandmarkFileError(path, number, f"unexpected header line {text!r}")
            continue
        if text == "}":
            if len(points) != n_points:
                raise LandmarkFileError(
                    path, number, f"n_points is {n_points} but {len(points)} points were listed"
                )
            return np.asarray(points, dtype=np.float32).reshape(-1, 2)
        parts = text.split()
        if len(parts) != 2:
            raise LandmarkFileError(path, number, f"expected 'x y', got {text!r}")
        points.append(
            (_parse_float(parts[0], path, number, "x"), _parse_float(parts[1], path, number, "y"))
        )
    where = len(lines) if lines else None
    raise LandmarkFileError(path, where, "missing closing '}'" if opened_at else "missing '{'")
