"""NME of a constant face: the mean training landmarks, predicted for every test face.

The shared faces are similarity-aligned to one template, so this prior alone places landmarks
well; a landmark source is only useful where it beats it.

    python benchmarks/landmarks_mean_shape.py TRAIN_DIR [TRAIN_DIR ...] --test DIR
"""

from __future__ import annotations

import argparse

from progface.landmarks.data import load_landmark_faces
from progface.metrics.nme import nme


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("train", nargs="+")
    parser.add_argument("--test", required=True)
    args = parser.parse_args()
    train = load_landmark_faces(args.train)
    test = load_landmark_faces([args.test])
    mean = train.points.mean(dim=0, keepdim=True).expand_as(test.points)
    by_size = 100 * nme(mean, test.points, "size", 128).mean()
    by_io = 100 * nme(mean, test.points, "inter_ocular").mean()
    print("| source | px | NME (% of image size) | NME (% of inter-ocular) | faces |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| mean training shape ({len(train)} faces) | any | {by_size:.3f} | {by_io:.3f} | {len(test)} |"
    )


if __name__ == "__main__":
    main()
