"""Make CelebA's official split as folders of symlinks: OUT/train (162,770), OUT/val, OUT/test.

    python benchmarks/baselines/celeba_split.py /data/celeba /data/celeba-split

``progface train --data OUT/train --val OUT/test --set data.crop=celeba`` then trains on the
paper's training set; ``progface bench --data OUT/test --crop celeba`` tests on its test set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from progface.data.datasets import SPLIT_CODES, find_celeba, read_partition


def main(root: str, out: str) -> None:
    image_dir, partition = find_celeba(root)
    codes = read_partition(partition)
    names = {code: name for name, code in SPLIT_CODES.items()}
    counts = dict.fromkeys(SPLIT_CODES, 0)
    for split in SPLIT_CODES:
        (Path(out) / split).mkdir(parents=True, exist_ok=True)
    for file, code in sorted(codes.items()):
        src, dst = image_dir / file, Path(out) / names[code] / file
        if not src.is_file():
            sys.exit(f"{src}: listed in {partition} but missing")
        if not dst.exists():
            os.symlink(src.resolve(), dst)
        counts[names[code]] += 1
    print(", ".join(f"{split}: {n}" for split, n in counts.items()))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
