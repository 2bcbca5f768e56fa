"""What a run reports: ``OUT/metrics.jsonl`` and the progress bar (or log lines)."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from progface.io.atomic import write_text_atomic
from progface.train.config import TrainConfig


class MetricsLog:
    """Append-only JSONL (rank 0 only)."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.enabled = path, enabled

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def cut(self, iteration: int) -> None:
        """Drop the records after ``iteration`` (and a line torn by a kill): a resumed run
        logs those iterations again."""
        if not self.enabled or not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("iteration", 0) <= iteration:
                kept.append(line + "\n")
        write_text_atomic(self.path, "".join(kept))


class Progress:
    """The tqdm bar (rank 0, on a terminal) and, every ``loop.log_every`` iterations and at the
    end, the mean loss terms in the metrics log (and as a line on stderr when it is no
    terminal)."""

    def __init__(self, log: MetricsLog, cfg: TrainConfig, start: int, end: int, main: bool):
        from tqdm.auto import tqdm

        tty = sys.stderr.isatty()
        self.log, self.every, self.end = log, cfg.loop.log_every, end
        self.lines = main and cfg.loop.progress and not tty
        self.bar = tqdm(total=end, initial=start, disable=not (main and cfg.loop.progress and tty),
                        dynamic_ncols=True, desc=cfg.recipe)  # fmt: skip
        self.sums: dict[str, float] = {}
        self.count = 0
        self.t_log = self.t0 = time.perf_counter()

    def update(self, done: int, terms: Mapping[str, float], state: Mapping[str, Any]) -> None:
        """Count iteration ``done`` (1-based) with its loss terms and the recipe's state."""
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.count += 1
        self.bar.update(1)
        self.bar.set_postfix_str(fmt({**state, **terms}), refresh=False)
        if done % self.every and done != self.end:
            return
        now = time.perf_counter()
        sec = (now - self.t_log) / self.count
        record = {"kind": "train", "iteration": done, **state,
                  **{k: v / self.count for k, v in self.sums.items()},
                  "sec_per_it": sec, "elapsed_s": now - self.t0}  # fmt: skip
        self.log.write(record)
        if self.lines:
            print(f"[{done}/{self.end}] {fmt({**state, **record})} eta {eta(sec * (self.end - done))}",
                  file=sys.stderr, flush=True)  # fmt: skip
        self.sums, self.count, self.t_log = {}, 0, now

    def close(self) -> None:
        self.bar.close()


def fmt(values: Mapping[str, Any]) -> str:
    out = []
    for k, v in values.items():
        out.append(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}")
    return " ".join(out)


def eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
