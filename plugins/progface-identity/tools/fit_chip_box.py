"""Fit the identity metric's fixed chip box and check it against per-face dlib chips.

Usage (from the plugin folder, with progface and this plugin importable)::

    python tools/fit_chip_box.py ../../../shared/data/faces/train/celeba \\
        --check ../../../shared/data/faces/val/celeba_heldout_ids

Fit: each face is enlarged to 256 px for dlib's HOG detector; on the faces it detects, the
5-point predictor gives landmarks and ``dlib.get_face_chip_details(size=150, padding=0.25)`` the
chip that ``dlib.get_face_chip`` would cut. The box printed is the mean of those chips' corner
pixel centres, as fractions of the face (``CHIP_BOX`` in ``progface_identity.py``).

Check: on faces of identities listed in the folder's ``index.csv`` (``celeba_identity``), the
cosine similarity of every pair of faces, for three chips: the fixed box, dlib's per-face
``get_face_chip``, and the whole face resized to 150 px (a wrong chip, for contrast). Printed:
mean same-person and different-person similarity, the verification AUC (the chance that a
same-person pair scores above a different-person pair) and nearest-neighbour accuracy.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import progface_identity as pid

BIG = 256  # the HOG detector misses most faces at 128 px


def _load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def dlib_chip(img: np.ndarray, detector, predictor):
    """``(chip_details, chip)`` of dlib's own alignment, or None when no face is detected."""
    import dlib

    big = np.asarray(Image.fromarray(img).resize((BIG, BIG), Image.BILINEAR))
    boxes = detector(big, 0)
    if not len(boxes):
        return None
    shape = predictor(big, max(boxes, key=lambda r: r.area()))
    details = dlib.get_face_chip_details(shape, pid.CHIP_SIZE, 0.25)
    return details, dlib.get_face_chip(big, shape, pid.CHIP_SIZE, 0.25)


def fit(files: list[Path], detector, predictor) -> tuple[tuple[float, ...], float, int]:
    corners, angles = [], []
    for path in files:
        got = dlib_chip(_load(path), detector, predictor)
        if got is None:
            continue
        r = got[0].rect
        # pixel centres at 256 px -> fractions of the face (0 and 1 are its outer edges)
        corners.append([(v + 0.5) / BIG for v in (r.left(), r.top(), r.right(), r.bottom())])
        angles.append(got[0].angle)
    box = tuple(float(v) for v in np.mean(corners, axis=0))
    return box, float(np.mean(angles)), len(corners)


def _scores(vectors: list[np.ndarray], labels: np.ndarray) -> str:
    e = np.stack(vectors)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    cos = e @ e.T
    iu = np.triu_indices(len(e), 1)
    same = (labels[:, None] == labels[None])[iu]
    pairs = cos[iu]
    auc = (pairs[same][:, None] > pairs[~same][None]).mean()
    np.fill_diagonal(cos, -2)
    nn = (labels[cos.argmax(1)] == labels).mean()
    return (
        f"same {pairs[same].mean():.3f} different {pairs[~same].mean():.3f} "
        f"AUC {auc:.4f} nearest-neighbour {nn:.3f}"
    )


def check(folder: Path, box, detector, predictor, identities: int, per_identity: int) -> None:
    by_id: dict[str, list[str]] = {}
    for row in csv.DictReader(open(folder / "index.csv")):
        by_id.setdefault(row["celeba_identity"], []).append(row["file"])
    chosen = [i for i in sorted(by_id) if len(by_id[i]) >= per_identity][:identities]
    fixed, own, whole, labels = [], [], [], []
    net = pid._network()
    for ident in chosen:
        for name in sorted(by_id[ident])[:per_identity]:
            img = _load(folder / name)
            got = dlib_chip(img, detector, predictor)
            if got is None:  # compare the three chips on the same faces
                continue
            face = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255
            fixed.append(np.asarray(net.compute_face_descriptor(pid.face_chips(face, box)[0])))
            own.append(np.asarray(net.compute_face_descriptor(got[1])))
            resized = np.asarray(Image.fromarray(img).resize((150, 150), Image.BILINEAR))
            whole.append(np.asarray(net.compute_face_descriptor(resized)))
            labels.append(ident)
    labels_arr = np.array(labels)
    print(f"check on {len(labels)} faces of {len(chosen)} identities in {folder}:")
    print(f"  fixed box:            {_scores(fixed, labels_arr)}")
    print(f"  dlib get_face_chip:   {_scores(own, labels_arr)}")
    print(f"  whole face at 150 px: {_scores(whole, labels_arr)}")


def main() -> None:
    import dlib

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fit_folder", type=Path)
    parser.add_argument("--faces", type=int, default=300, help="faces to fit on")
    parser.add_argument("--check", type=Path, help="a folder with index.csv identities")
    parser.add_argument("--identities", type=int, default=20)
    parser.add_argument("--per-identity", type=int, default=5)
    args = parser.parse_args()
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(pid.model_path("shape_predictor_5_face_landmarks.dat")))
    files = sorted(p for p in args.fit_folder.iterdir() if p.suffix in (".png", ".jpg"))
    box, angle, used = fit(files[: args.faces], detector, predictor)
    print(f"CHIP_BOX = ({', '.join(f'{v:.4f}' for v in box)})")
    print(f"  from {used} detected faces of {min(args.faces, len(files))}; mean angle {angle:.3f}")
    if args.check:
        check(args.check, box, detector, predictor, args.identities, args.per_identity)


if __name__ == "__main__":
    main()
