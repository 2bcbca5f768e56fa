"""progface.data: face images, crop policies, the paper's degradation chain, landmark files,
datasets. Images are float32 tensors [3, H, W] (batches [B, 3, H, W]) with values in [0, 1]."""

from __future__ import annotations

from progface.data.crop import CROP_POLICIES, apply_crop, crop_box, map_points
from progface.data.datasets import CelebA, FaceFolder, find_celeba
from progface.data.degrade import (
    DegradationChain,
    degrade_chain,
    prepare_hr,
    quantize_uint8,
    resize_to,
)
from progface.data.errors import FolderError, ImageError, LandmarkFileError
from progface.data.landmarks_io import LandmarkRecord, read_landmarks_csv, read_pts
from progface.io.images import (
    IMAGE_SUFFIXES,
    list_images,
    load_image,
    load_image_uint8,
    save_png,
)

__all__ = [
    "CROP_POLICIES",
    "IMAGE_SUFFIXES",
    "CelebA",
    "DegradationChain",
    "FaceFolder",
    "FolderError",
    "ImageError",
    "LandmarkFileError",
    "LandmarkRecord",
    "apply_crop",
    "crop_box",
    "degrade_chain",
    "find_celeba",
    "list_images",
    "load_image",
    "load_image_uint8",
    "map_points",
    "prepare_hr",
    "quantize_uint8",
    "read_landmarks_csv",
    "read_pts",
    "resize_to",
    "save_png",
]
