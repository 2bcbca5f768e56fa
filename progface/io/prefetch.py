"""Overlap reading with computing: iterate in a background thread, a bounded number ahead.

``upscale`` and ``bench`` decode images (PIL, releasing the GIL) while the network runs on the
previous batch, so the network does not wait for the disk when a second core is free, and
memory holds at most ``depth`` batches beyond the one in use, whatever the folder's size.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["one_torch_thread", "prefetch"]

T = TypeVar("T")
_DONE = object()


class _Failed:
    def __init__(self, err: BaseException) -> None:
        self.err = err


def one_torch_thread() -> None:
    """Make the calling helper thread's torch operations run on one thread. OpenMP's thread
    count is per calling thread: without this, each helper that resizes or converts an image
    starts a team as large as the network's beside it, and the cores are oversubscribed (the
    network's threads wait for each other at every layer). The main thread keeps its count."""
    import torch

    torch.set_num_threads(1)


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Yield ``items`` in order, produced by a background thread at most ``depth`` ahead.

    An exception raised while producing is re-raised here, at the item where it happened. When
    the consumer stops early (``break``, an exception, garbage collection), the producer stops
    at its next item.
    """
    if depth < 1:
        raise ValueError(f"prefetch depth must be >= 1, got {depth}")
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            one_torch_thread()
            for item in items:
                if not put(item):
                    return
        except BaseException as err:  # handed to the consumer, raised there
            put(_Failed(err))
            return
        put(_DONE)

    worker = threading.Thread(target=produce, name="progface-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.err
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)
