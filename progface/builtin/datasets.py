"""Built-in plugin: the image-folder and CelebA datasets."""

from __future__ import annotations

from progface.hookspecs import hookimpl
from progface.registry import DatasetSpec


def folder(root, **options):
    from progface.data.datasets import FaceFolder

    return FaceFolder(root, **options)


def celeba(root, **options):
    from progface.data.datasets import CelebA

    return CelebA(root, **options)


@hookimpl
def register_datasets(register):
    register(DatasetSpec("folder", folder, "a folder of face images (jpg/png/webp/bmp/tiff)"))
    register(
        DatasetSpec("celeba", celeba, "aligned CelebA with list_eval_partition.txt (crop 178)")
    )
