"""progface plugin: the ``identity`` metric, cosine similarity of dlib face embeddings.

``identity(sr, hr)`` embeds both faces with dlib's ResNet face recognition network
(``dlib_face_recognition_resnet_model_v1.dat`` from the ``face-recognition-models`` package, 128-D
descriptors) and returns their cosine similarity per image: 1 when the SR face carries exactly
the HR face's identity features, lower when super-resolution changed who the face looks like.

The network expects a 150x150 face chip aligned as ``dlib.get_face_chip`` aligns it (5-point
landmarks, padding 0.25). progface's faces are already aligned (the CelebA framing of bench's
HR faces), so the chip is one fixed box of the face, :data:`CHIP_BOX`: the mean chip that
``dlib.get_face_chip_details`` gives on 5-point landmarks of 291 ``train/celeba`` faces
(``tools/fit_chip_box.py``). SR and HR are cut by the same box, so no landmark detector runs on
the SR face and its errors cannot leak into the score; on held-out identities the fixed chip
separates same-person from different-person pairs as well as a per-face ``get_face_chip`` does
(see the README). Faces in another framing need a box of their own.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import progface
from progface.registry import MetricSpec

INSTALL = "pip install dlib-bin face-recognition-models"
for _module, _dist in (
    ("dlib", "dlib-bin"),
    ("face_recognition_models", "face-recognition-models"),
):
    if importlib.util.find_spec(_module) is None:
        raise ImportError(f"the identity metric needs {_dist} ({_module} is missing): {INSTALL}")

MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150
# Centres of the chip's corner pixels (left, top, right, bottom) as fractions of the aligned
# face's width and height, where 0 and 1 are the image's outer edges. Fitted by
# tools/fit_chip_box.py on the 291 of 300 faces of ../shared/data/faces/train/celeba where dlib's
# detector found a face (mean angle 0.003 rad: none applied). The chip spans 61% of the face's
# width, from above the brows to the chin.
CHIP_BOX = (0.1987, 0.3338, 0.8090, 0.9440)
CACHE_SIZE = 4096  # embeddings kept by chip content: bench embeds the same HR face per method


def model_path(filename: str = MODEL_FILE) -> Path:
    """A model file of the ``face-recognition-models`` package, found without importing it
    (its ``__init__`` needs ``pkg_resources``, which new setuptools no longer has)."""
    spec = importlib.util.find_spec("face_recognition_models")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "models" / filename
        if path.is_file():
            return path
    raise ImportError(f"{filename} was not found in the face-recognition-models package: {INSTALL}")


@lru_cache(maxsize=1)
def _network():
    import dlib

    return dlib.face_recognition_model_v1(str(model_path()))


def face_chips(images, box: tuple[float, float, float, float] = CHIP_BOX):
    """Aligned faces ``[B,3,H,W]`` in [0, 1] -> dlib chips, uint8 numpy ``[B,150,150,3]``.

    Bilinear samples on the grid of ``box`` (corner pixel centres as fractions of the image),
    as ``dlib.extract_image_chip`` samples its chip rectangle.
    """
    import torch
    import torch.nn.functional as F

    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"identity: expected faces [B,3,H,W], got {tuple(images.shape)}")
    left, top, right, bottom = box
    u = torch.linspace(left, right, CHIP_SIZE, dtype=torch.float32) * 2 - 1
    v = torch.linspace(top, bottom, CHIP_SIZE, dtype=torch.float32) * 2 - 1
    grid = torch.stack(torch.meshgrid(u, v, indexing="xy"), dim=-1)  # [150,150,(x,y)]
    grid = grid.expand(images.shape[0], -1, -1, -1)
    images = images.detach().float().cpu().clamp(0, 1)
    chips = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return (chips * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


_cache: OrderedDict[bytes, object] = OrderedDict()


def embed(images):
    """Aligned faces ``[B,3,H,W]`` in [0, 1] -> dlib face descriptors, float64 ``[B,128]``."""
    import numpy as np
    import torch

    chips = face_chips(images)
    keys = [hashlib.blake2b(chip.tobytes(), digest_size=16).digest() for chip in chips]
    todo = {k: chip for k, chip in zip(keys, chips) if k not in _cache}
    if todo:
        found = _network().compute_face_descriptor([np.ascontiguousarray(c) for c in todo.values()])
        for key, vector in zip(todo, found):
            _cache[key] = np.asarray(vector, dtype=np.float64)
    for key in keys:
        _cache.move_to_end(key)
    out = torch.from_numpy(np.stack([_cache[k] for k in keys]))
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return out


def identity(sr, hr):
    """Cosine similarity of the dlib embeddings of SR and HR faces, ``[B]`` in [-1, 1]."""
    if sr.shape != hr.shape:
        raise ValueError(f"identity: SR {tuple(sr.shape)} and HR {tuple(hr.shape)} differ")
    a, b = embed(sr), embed(hr)
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
    return cos.clamp(-1, 1)


@progface.hookimpl
def register_metrics(register):
    register(
        MetricSpec(
            "identity",
            identity,
            "cosine similarity of dlib ResNet face embeddings (fixed 150-px chip of the aligned "
            "face)",
            unit="cosine",
        )
    )
