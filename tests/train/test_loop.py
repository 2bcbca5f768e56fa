from __future__ import annotations

import json

import pytest
import torch

from progface.registry import RecipeSpec
from progface.train.checkpoint import latest_checkpoint
from progface.train.config import load_config
from progface.train.context import NonFiniteLossError
from progface.train.data import InfiniteBatchSampler
from progface.train.loop import train
from progface.weights import load_safetensors
from tests.train.toy_recipe import TOY_SPEC, ToyDataset, ToyNotSR, ToyOptions


def _cfg(out, *extra):
    return load_config(
        overrides=[f"out={str(out)!r}".replace("'", '"'), "loop.batch_size=3", "data.workers=0",
                   "loop.log_every=1", "loop.progress=false", "loop.val_every=2",
                   "loop.checkpoint_every=2", "loop.keep_checkpoints=0", *extra],
        spec=TOY_SPEC,
    )  # fmt: skip


def _params(run):
    tensors, meta = load_safetensors(latest_checkpoint(run / "checkpoints"))
    return tensors, meta


def test_resume_is_bit_exact(tmp_path):
    data = ToyDataset()
    train(_cfg(tmp_path / "straight", "options.iterations=6"), spec=TOY_SPEC, train_data=data)
    train(_cfg(tmp_path / "split", "options.iterations=3"), spec=TOY_SPEC, train_data=data)
    train(_cfg(tmp_path / "split", "options.iterations=6"), spec=TOY_SPEC, train_data=data,
          resume=True)  # fmt: skip
    a, meta_a = _params(tmp_path / "straight")
    b, meta_b = _params(tmp_path / "split")
    assert meta_a["iteration"] == meta_b["iteration"] == 6
    assert meta_a["recipe_state"] == meta_b["recipe_state"] == {"seen": 6}
    assert a.keys() == b.keys()
    for k in a:
        if not k.startswith("rng."):
            assert torch.equal(a[k], b[k]), k
    assert torch.equal(a["rng.0.torch"], b["rng.0.torch"])
    lines = [
        json.loads(x) for x in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["iteration"] for r in lines if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "straight" / "samples" / "iter_00000006.png").is_file()
    assert (tmp_path / "straight" / "config.toml").is_file()


def test_resume_cuts_the_metrics_log_back_to_the_checkpoint(tmp_path):
    run, data = tmp_path / "r", ToyDataset()
    train(_cfg(run, "options.iterations=6"), spec=TOY_SPEC, train_data=data)
    (run / "checkpoints" / "ckpt_00000006.safetensors").unlink()  # killed before it was saved
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"kind": "tr')  # a line torn by the kill
    train(_cfg(run, "options.iterations=6"), spec=TOY_SPEC, train_data=data, resume=True)
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]


class _BrokenFaces(ToyDataset):
    """Item 5 breaks while loading; one file was left out when the set was built."""

    unreadable = [("/faces/empty.png", "empty file (0 bytes)")]

    def __getitem__(self, i):
        if i == 5:
            from progface.data.errors import ImageError

            raise ImageError("/faces/5.png", "truncated image")
        return super().__getitem__(i)


def test_a_broken_file_is_skipped_and_the_left_out_ones_recorded(tmp_path, capsys):
    run = tmp_path / "r"
    train(_cfg(run, "options.iterations=6"), spec=TOY_SPEC, train_data=_BrokenFaces())
    assert latest_checkpoint(run / "checkpoints").name == "ckpt_00000006.safetensors"
    skipped = json.loads((run / "skipped_files.json").read_text())
    assert skipped == [
        {"file": "/faces/empty.png", "reason": "empty file (0 bytes)", "set": "train"}
    ]
    err = capsys.readouterr().err
    assert "progface: skipped /faces/5.png: truncated image (item 5" in err
    assert "1 unreadable file(s) skipped, e.g. /faces/empty.png" in err


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01  # inside the tensor data
    path.write_bytes(bytes(data))


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-1000])


@pytest.mark.parametrize("damage", [_flip_a_byte, _truncate])
def test_resume_falls_back_to_the_newest_valid_checkpoint(tmp_path, capsys, damage):
    from progface.train.checkpoint import read_checkpoint
    from progface.weights import WeightsError

    data = ToyDataset()
    train(_cfg(tmp_path / "straight", "options.iterations=6"), spec=TOY_SPEC, train_data=data)
    run = tmp_path / "r"
    train(_cfg(run, "options.iterations=6", "loop.stop_at=5"), spec=TOY_SPEC, train_data=data)
    newest = run / "checkpoints" / "ckpt_00000005.safetensors"
    damage(newest)
    with pytest.raises(WeightsError, match="ckpt_00000005.safetensors: "):
        read_checkpoint(newest)
    train(_cfg(run, "options.iterations=6"), spec=TOY_SPEC, train_data=data, resume=True)
    assert "progface: skipping checkpoint " in capsys.readouterr().err
    a, b = _params(tmp_path / "straight")[0], _params(run)[0]
    assert all(torch.equal(a[k], b[k]) for k in a)  # resumed from iteration 4: still exact


def test_seed_sets_python_and_numpy_rngs_too(tmp_path):
    import random

    import numpy as np

    drawn = []

    def build(cfg, ctx, **objects):
        drawn.append((random.random(), float(np.random.rand())))
        return TOY_SPEC.build(cfg, ctx, **objects)

    spec = RecipeSpec("toy-draws", build, ToyOptions)
    for run, state in (("a", 1), ("b", 2)):
        random.seed(state)  # whatever the global RNGs were before the run
        np.random.seed(state)
        train(_cfg(tmp_path / run, "options.iterations=1"), spec=spec, train_data=ToyDataset())
    assert drawn[0] == drawn[1]


def test_refuses_to_overwrite_and_resume_needs_checkpoint(tmp_path):
    data = ToyDataset()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(_cfg(tmp_path / "r", "options.iterations=2"), spec=TOY_SPEC, train_data=data,
              resume=True)  # fmt: skip
    train(_cfg(tmp_path / "r", "options.iterations=2"), spec=TOY_SPEC, train_data=data)
    with pytest.raises(FileExistsError, match="--resume"):
        train(_cfg(tmp_path / "r", "options.iterations=2"), spec=TOY_SPEC, train_data=data)


def test_nan_stops_naming_term_and_keeps_last_checkpoint(tmp_path):
    run = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError, match=r"'l1' is nan at iteration 3"):
        train(_cfg(run, "options.iterations=6", "options.nan_at=3"), spec=TOY_SPEC,
              train_data=ToyDataset())  # fmt: skip
    assert latest_checkpoint(run / "checkpoints").name == "ckpt_00000002.safetensors"
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["kind"] == "error" and last["term"] == "l1" and last["iteration"] == 3


def test_sampler_is_a_function_of_seed_and_iteration():
    a = InfiniteBatchSampler(10, 4, seed=1)
    stream = [a.batch(i) for i in range(6)]
    flat = sum(stream, [])
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))
    resumed = iter(InfiniteBatchSampler(10, 4, seed=1, start=3))
    assert [next(resumed) for _ in range(3)] == stream[3:]
    r0 = InfiniteBatchSampler(10, 2, seed=1, rank=0, world=2)
    r1 = InfiniteBatchSampler(10, 2, seed=1, rank=1, world=2)
    assert r0.batch(0) + r1.batch(0) == a.batch(0)


def test_recipe_without_sample_uses_its_own_validate(tmp_path):
    spec = RecipeSpec("not-sr", lambda cfg, ctx, **o: ToyNotSR(cfg, ctx), ToyOptions)
    cfg = _cfg(tmp_path / "n", "options.iterations=2")
    train(cfg, spec=spec, train_data=ToyDataset(), val_data=ToyDataset(5))
    records = [json.loads(x) for x in (tmp_path / "n" / "metrics.jsonl").read_text().splitlines()]
    assert [r for r in records if r["kind"] == "val"][-1]["items"] == 5
    assert not list((tmp_path / "n" / "samples").iterdir())


def test_several_training_roots_limit_and_cache(tmp_path):
    import os

    from PIL import Image

    from progface.data.datasets import CachedFaces
    from progface.train.data import build_datasets

    for folder, n in (("a", 3), ("b", 2)):
        (tmp_path / folder).mkdir()
        for i in range(n):
            Image.new("RGB", (128, 128), (10 * i, 20, 30)).save(tmp_path / folder / f"{i}.png")
    roots = os.pathsep.join(str(tmp_path / f) for f in ("a", "b"))
    cfg = load_config(overrides=[f"data.train={json.dumps(roots)}"])
    train, val = build_datasets(cfg)
    assert len(train) == 5 and val is None
    assert [train[i]["name"] for i in range(5)] == ["0.png", "1.png", "2.png", "0.png", "1.png"]
    cfg = load_config(
        overrides=[f"data.train={json.dumps(roots)}", "data.limit=4", "data.cache=true"]
    )
    train, _ = build_datasets(cfg)
    assert isinstance(train, CachedFaces) and len(train) == 4 and train[3]["name"] == "0.png"


def test_best_weights_follow_size_then_psnr(tmp_path):
    from progface.train.validation import keep_best

    class Exporting:
        def __init__(self):
            self.value = 0.0

        def export(self):
            return {"w": torch.tensor([self.value])}, {"architecture": "toy"}

    recipe = Exporting()
    for iteration, size, psnr in ((1, 64, 25.0), (2, 128, 20.0), (3, 128, 21.0), (4, 128, 20.5),
                                  (5, 64, 30.0)):  # fmt: skip
        recipe.value = float(iteration)
        keep_best(recipe, tmp_path, iteration, {"psnr": psnr, "ssim": 0.5, "size": size})
    tensors, facts = load_safetensors(tmp_path / "best.safetensors")
    assert float(tensors["w"]) == 3.0 and facts["val"]["iteration"] == 3
    assert json.loads((tmp_path / "best.json").read_text())["psnr"] == 21.0


def test_the_base_class_defaults_and_a_recipe_that_does_not_subclass_it(tmp_path, capsys):
    from tests.train.toy_recipe import ToyCore

    # only the required methods (and counters): no sample, validate, save_grid or export
    spec = RecipeSpec("bare", lambda cfg, ctx, **o: ToyCore(cfg, ctx), ToyOptions)
    run = tmp_path / "bare"
    train(_cfg(run, "options.iterations=2"), spec=spec, train_data=ToyDataset(),
          val_data=ToyDataset(5))  # fmt: skip
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in records] == ["train", "train"]
    assert latest_checkpoint(run / "checkpoints").name == "ckpt_00000002.safetensors"
    assert not list((run / "samples").iterdir()) and not (run / "weights.safetensors").exists()
    train(_cfg(run, "options.iterations=2"), spec=spec, train_data=ToyDataset(), resume=True)
    assert f"{run} is at iteration 2 already and this run ends at 2" in capsys.readouterr().err

    class NotARecipe:
        def __init__(self, cfg, ctx):
            self.core = ToyCore(cfg, ctx)

    spec = RecipeSpec("plain", lambda cfg, ctx, **o: NotARecipe(cfg, ctx), ToyOptions)
    with pytest.raises(TypeError, match="'plain' built a NotARecipe, which does not subclass"):
        train(_cfg(tmp_path / "p"), spec=spec, train_data=ToyDataset())
    assert not (tmp_path / "p").exists()
