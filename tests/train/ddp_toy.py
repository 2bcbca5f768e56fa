"""Run by tests/train/test_ddp.py under torchrun: the toy recipe, data-parallel."""

from __future__ import annotations

import sys

from progface.train.config import load_config
from progface.train.loop import train
from tests.train.toy_recipe import TOY_SPEC, ToyDataset

if __name__ == "__main__":
    out, batch = sys.argv[1], sys.argv[2]
    cfg = load_config(overrides=[f'out="{out}"', f"loop.batch_size={batch}", "data.workers=0",
                                 "loop.progress=false", "options.iterations=3", "options.noise=0.0",
                                 "options.bn=false", "loop.val_every=0", "loop.checkpoint_every=0"],
                      spec=TOY_SPEC)  # fmt: skip
    train(cfg, spec=TOY_SPEC, train_data=ToyDataset())
