"""Labelled faces held in memory (a ``Dataset``), for distillation and landmark evaluation.

Faces are stored as uint8 (8,000 faces of 128 px take 0.4 GB) with their 68 landmarks in the
faces' pixel frame (pixel centres on integers, as ``landmarks68.csv``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["EXCLUDED_SOURCES", "LandmarkFaces", "load_landmark_faces"]

EXCLUDED_SOURCES = ("none", "dlib_fallback_box")


@dataclass
class LandmarkFaces:
    """Faces and their landmarks in memory: ``images`` uint8 [N, 3, S, S], ``points`` float
    [N, 68, 2] (S-px frame; None for unlabelled faces), ``names`` (``folder/file``), and each
    row's label ``sources`` (gt_300w, dlib_det, ...)."""

    images: torch.Tensor
    points: torch.Tensor | None
    names: list[str]
    sources: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        """One face as a dataset item: ``name``, ``hr`` float [3, S, S] in [0, 1] and, when
        labelled, ``landmarks`` [68, 2]."""
        item: dict[str, torch.Tensor | str] = {
            "name": self.names[index],
            "hr": self.images[index].float() / 255,
        }
        if self.points is not None:
            item["landmarks"] = self.points[index]
        return item

    def batch(self, index: Sequence[int] | torch.Tensor) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(index, dtype=torch.long)
        batch = {"hr": self.images[index].float() / 255}
        if self.points is not None:
            batch["landmarks"] = self.points[index]
        return batch

    def float_images(self) -> torch.Tensor:
        return self.images.float() / 255


def load_landmark_faces(
    folders: Sequence[str | Path],
    size: int = 128,
    exclude_sources: Sequence[str] = EXCLUDED_SOURCES,
    limit: int | None = None,
    require_labels: bool = True,
) -> LandmarkFaces:
    """Read the labelled faces of ``folders`` (``landmarks68.csv`` in each), resized to
    ``size`` px when needed (points moved with it), in file-name order.

    Rows whose ``landmarks_from`` is in ``exclude_sources`` are skipped (``none``: no
    landmarks; ``dlib_fallback_box``: the predictor ran without a detection and is often
    wrong). With ``require_labels=False`` every image is read (centre-cropped when not square)
    and ``points`` is None: for teachers that look at the images.
    """
    from progface.data.degrade import prepare_hr
    from progface.data.landmarks_io import read_landmarks_csv
    from progface.io.images import list_images, load_image
    from progface.landmarks.evaluate import resize_faces
    from progface.landmarks.heatmaps import rescale_points

    images, points, names, sources = [], [], [], []
    for folder in folders:
        folder = Path(folder)
        if not require_labels:
            for path in list_images(folder):
                if limit is not None and len(names) >= limit:
                    break
                img = prepare_hr(load_image(path), "center", size, True, path)
                images.append((img * 255).round().to(torch.uint8))
                names.append(f"{folder.name}/{path.name}")
                sources.append("")
            continue
        table = read_landmarks_csv(folder / "landmarks68.csv")
        for name in sorted(table):
            record = table[name]
            if record.source in exclude_sources:
                continue
            if limit is not None and len(names) >= limit:
                break
            img = load_image(folder / name).unsqueeze(0)
            pts = torch.from_numpy(record.points).float().unsqueeze(0)
            h, w = img.shape[-2:]
            if h != w:
                raise ValueError(f"{folder / name}: square faces expected, got {w}x{h}")
            if h != size:
                pts = rescale_points(pts, h, size)
                img = resize_faces(img, size)
            images.append((img[0] * 255).round().to(torch.uint8))
            points.append(pts[0])
            names.append(f"{folder.name}/{name}")
            sources.append(record.source)
    if not names:
        what = "labelled faces" if require_labels else "images"
        raise ValueError(f"no {what} in {', '.join(str(f) for f in folders)}")
    stacked = torch.stack(points) if require_labels else None
    return LandmarkFaces(torch.stack(images), stacked, names, sources)
