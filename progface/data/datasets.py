"""Datasets of HR faces with the paper's LR chain: an image folder and aligned CelebA.

Every item is a dict of float32 tensors in [0, 1] (``default_collate`` batches it)::

    {"name": str, "hr": [3, 128, 128], "x64": [3, 64, 64], "x32": [3, 32, 32],
     "lr": [3, 16, 16], "landmarks": [68, 2] (FaceFolder with landmarks=True only)}

``hr`` is the cropped image resized to ``size`` (one antialiased bilinear step), and x64, x32,
lr are the chain 128 -> 64 -> 32 -> 16 (``degrade_chain``); with ``quantize=True`` every stage
is rounded to 1/255 as PIL's uint8 images are. Landmarks are (x, y) in ``size``-px, 0-based
pixel coordinates, moved with the same crop and resize as the image.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from progface.data.crop import CROP_POLICIES, crop_box, map_points
from progface.data.degrade import degrade_chain, prepare_hr
from progface.data.errors import FolderError, ImageError
from progface.data.landmarks_io import read_landmarks_csv, read_pts
from progface.io.images import list_images, load_image

__all__ = [
    "CachedFaces",
    "CelebA",
    "FaceFolder",
    "SkipUnreadable",
    "find_celeba",
    "unreadable_files",
]

LANDMARKS_CSV = "landmarks68.csv"
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


def _readable(files: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Split ``files`` into those PIL can open and (file, reason) for the others.

    Only the header is read (cheap enough for CelebA's 200k files at run start); a file that
    breaks later, while decoding, is skipped then by :class:`SkipUnreadable`.
    """
    from PIL import Image

    good, bad = [], []
    for path in files:
        try:
            if path.stat().st_size == 0:
                raise ImageError(path, "empty file (0 bytes)")
            with Image.open(path):
                pass
            good.append(path)
        except ImageError as err:
            bad.append((path, err.reason))
        except Exception as err:  # UnidentifiedImageError, OSError ...
            bad.append((path, f"not a readable image: {' '.join(str(err).split())}"))
    return good, bad


class SkipUnreadable(Dataset):
    """Wraps a dataset so that an item whose file fails to load (``ImageError``) is replaced by
    the next readable one, with a warning, instead of killing the run at that batch on every
    resume. The replacement depends only on the index, so resumed runs stay bit-exact."""

    def __init__(self, data: Dataset) -> None:
        self.data = data
        self.bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:  # recipes read attributes of their data set
        if name in ("data", "bad") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.data, name)

    def __getitem__(self, index: int):
        n = len(self)
        for step in range(n):
            i = (index + step) % n
            if i in self.bad:
                continue
            try:
                return self.data[i]
            except ImageError as err:
                self.bad.add(i)
                print(f"progface: skipped {err} (item {i}; the next readable face is used)",
                      file=sys.stderr)  # fmt: skip
        raise ImageError(Path("."), "no readable item left in the data set")


def unreadable_files(data: Any) -> list[tuple[Path, str]]:
    """The files left out as unreadable by every face dataset inside ``data`` (through
    ``Subset``, ``ConcatDataset`` and wrappers with ``.data``)."""
    found = list(getattr(data, "unreadable", []))
    for inner in (getattr(data, "dataset", None), getattr(data, "data", None)):
        if isinstance(inner, Dataset):
            found += unreadable_files(inner)
    for inner in getattr(data, "datasets", None) or []:
        found += unreadable_files(inner)
    return found


class _FaceImages(Dataset):
    """Shared item logic: load, crop, resize to ``size``, chain down to ``size // 8``."""

    def __init__(self, files: list[Path], crop: str, size: int, quantize: bool) -> None:
        if crop not in CROP_POLICIES:
            raise ValueError(
                f"unknown crop policy {crop!r}; choose one of {', '.join(CROP_POLICIES)}"
            )
        if size % 8:
            raise ValueError(f"size must be a multiple of 8 (got {size})")
        self.files, self.unreadable = _readable(files)
        self.crop = crop
        self.size = size
        self.quantize = quantize
        self.points: list[torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        path = self.files[index]
        image = load_image(path)
        hr = prepare_hr(image, self.crop, self.size, self.quantize, path).unsqueeze(0)
        s = self.size
        x64, x32, lr = degrade_chain(hr, (s // 2, s // 4, s // 8), quantize=self.quantize)
        item: dict[str, torch.Tensor | str] = {
            "name": path.name,
            "hr": hr[0],
            "x64": x64[0],
            "x32": x32[0],
            "lr": lr[0],
        }
        if self.points is not None:
            box = crop_box(image.shape[2], image.shape[1], self.crop, path)
            item["landmarks"] = map_points(self.points[index], box, self.size)
        return item


class FaceFolder(_FaceImages):
    """The images of one folder (``list_images``, sorted by name) as HR/LR face pairs.

    Args:
        root: folder of images (not recursive).
        crop: ``"none"`` (square images), ``"center"`` or ``"celeba"`` (see ``crop.py``).
        size: HR size in px (128 in the paper); LR is ``size // 8``.
        quantize: round every stage to 1/255 (PIL parity).
        landmarks: also return ``"landmarks"`` [68, 2], read from ``root/landmarks68.csv`` or
            from a ``.pts`` file beside each image; images without landmarks are left out and
            counted in ``num_without_landmarks``.
        limit: keep only the first ``limit`` images (after that filtering).
    """

    def __init__(
        self,
        root: str | Path,
        crop: str = "none",
        size: int = 128,
        quantize: bool = True,
        landmarks: bool = False,
        limit: int | None = None,
    ) -> None:
        self.root = Path(root)
        files = list_images(self.root)
        self.num_without_landmarks = 0
        points: list[torch.Tensor] | None = None
        if landmarks:
            files, points = self._with_landmarks(files)
        if limit is not None:
            files = files[:limit]
            points = points[:limit] if points is not None else None
        super().__init__(files, crop, size, quantize)
        if points is not None and self.unreadable:  # keep the points of the readable files
            kept = set(self.files)
            points = [pt for f, pt in zip(files, points) if f in kept]
        self.points = points

    def _with_landmarks(self, files: list[Path]) -> tuple[list[Path], list[torch.Tensor]]:
        table_path = self.root / LANDMARKS_CSV
        table = read_landmarks_csv(table_path) if table_path.is_file() else {}
        kept: list[Path] = []
        points: list[torch.Tensor] = []
        for path in files:
            if path.name in table:
                found = table[path.name].points
            elif path.with_suffix(".pts").is_file():
                found = read_pts(path.with_suffix(".pts"))
            else:
                continue
            kept.append(path)
            points.append(torch.from_numpy(found).float())
        self.num_without_landmarks = len(files) - len(kept)
        if not kept:
            raise FolderError(
                self.root, f"no images with landmarks ({LANDMARKS_CSV} or .pts files) in folder"
            )
        return kept, points


def find_celeba(root: str | Path) -> tuple[Path, Path]:
    """Locate (image folder, partition file) of aligned CelebA under ``root``.

    Accepts the authors' layout ``root/CelebA/Img/img_align_celeba`` +
    ``root/Anno/list_eval_partition.txt``, the flat layout ``root/img_align_celeba`` +
    ``root/list_eval_partition.txt``, and the official download's ``Eval/`` folder.
    """
    root = Path(root)
    image_dirs = [
        root / "CelebA" / "Img" / "img_align_celeba",
        root / "Img" / "img_align_celeba",
        root / "img_align_celeba",
    ]
    partition_files = [
        root / "Anno" / "list_eval_partition.txt",
        root / "Eval" / "list_eval_partition.txt",
        root / "CelebA" / "Anno" / "list_eval_partition.txt",
        root / "CelebA" / "Eval" / "list_eval_partition.txt",
        root / "list_eval_partition.txt",
    ]
    if not root.is_dir():
        raise FolderError(
            root, "no such folder" if not root.exists() else "is a file, not a folder"
        )
    image_dir = next((p for p in image_dirs if p.is_dir()), None)
    partition = next((p for p in partition_files if p.is_file()), None)
    if image_dir is None or partition is None:
        missing = "img_align_celeba/" if image_dir is None else "list_eval_partition.txt"
        raise FolderError(
            root,
            f"not a CelebA folder: no {missing} (expected CelebA/Img/img_align_celeba/ + "
            "Anno/list_eval_partition.txt, or img_align_celeba/ + list_eval_partition.txt)",
        )
    return image_dir, partition


def read_partition(path: Path) -> dict[str, int]:
    """Parse ``list_eval_partition.txt`` (``000001.jpg 0`` per line) into {file: code}."""
    codes: dict[str, int] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise ValueError(f"{path}:{number}: expected '<file> <0|1|2>', got {raw.strip()!r}")
        codes[parts[0]] = int(parts[1])
    return codes


class CelebA(_FaceImages):
    """Aligned CelebA (178x218 JPEGs) split by ``list_eval_partition.txt``.

    ``split`` is ``"train"`` (code 0), ``"val"`` (1) or ``"test"`` (2); files are sorted by name.
    The default crop is the paper's ``celeba`` box. Files listed in the split but missing on
    disk raise ``FolderError`` (a partial download should not pass silently).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        crop: str = "celeba",
        size: int = 128,
        quantize: bool = True,
        limit: int | None = None,
    ) -> None:
        if split not in SPLIT_CODES:
            raise ValueError(f"unknown CelebA split {split!r}; choose train, val or test")
        self.root = Path(root)
        self.split = split
        self.image_dir, self.partition_file = find_celeba(self.root)
        code = SPLIT_CODES[split]
        wanted = sorted(n for n, c in read_partition(self.partition_file).items() if c == code)
        on_disk = {p.name for p in self.image_dir.iterdir()}
        missing = [n for n in wanted if n not in on_disk]
        if missing:
            raise FolderError(
                self.image_dir,
                f"{len(missing)} of {len(wanted)} images of split {split!r} are missing "
                f"(first: {missing[0]})",
            )
        if limit is not None:
            wanted = wanted[:limit]
        super().__init__([self.image_dir / n for n in wanted], crop, size, quantize)


class CachedFaces(Dataset):
    """Keeps every item of ``data`` in memory as uint8 after its first load.

    Decoding, cropping and the LR chain are then paid once per face, not once per epoch. Only
    for quantized items (every image an exact multiple of 1/255, ``quantize=True``): the cache
    is lossless there, and the check on the first item refuses anything else. A DataLoader
    worker fills its own copy (about 65 kB per 128-px face with its chain).
    """

    def __init__(self, data: Dataset) -> None:
        self.data = data
        self._items: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict:
        stored = self._items.get(index)
        if stored is None:
            stored = {k: self._pack(k, v, index) for k, v in self.data[index].items()}
            self._items[index] = stored
        return {
            k: v.float() / 255 if isinstance(v, torch.Tensor) and v.dtype == torch.uint8 else v
            for k, v in stored.items()
        }

    @staticmethod
    def _pack(key: str, value, index: int):
        if not isinstance(value, torch.Tensor) or key == "landmarks":
            return value
        scaled = value * 255
        packed = scaled.round()
        if float((scaled - packed).abs().max()) > 1e-3:
            raise ValueError(
                f"CachedFaces: item {index} {key!r} is not quantized to 1/255 "
                "(set data.quantize=true to cache, or data.cache=false)"
            )
        return packed.to(torch.uint8)
