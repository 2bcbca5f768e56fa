"""The background reader: order, bounded look-ahead, errors where they happen, early stop."""

from __future__ import annotations

import threading
import time

import pytest

from progface.io.prefetch import prefetch


def test_items_come_in_order_and_all_of_them():
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))
    assert list(prefetch([])) == []


def test_the_producer_runs_at_most_depth_items_ahead():
    produced = []

    def items():
        for i in range(50):
            produced.append(i)
            yield i

    it = prefetch(items(), depth=2)
    assert next(it) == 0
    time.sleep(0.3)  # give the producer every chance to run ahead
    # item 0 consumed, 2 waiting in the queue, 1 more made and blocked on the full queue
    assert len(produced) <= 4
    assert list(it) == list(range(1, 50))


def test_an_error_is_raised_at_the_item_where_it_happened():
    def items():
        yield 1
        yield 2
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item in prefetch(items()):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_stops_the_producer():
    def items():
        i = 0
        while True:
            yield i
            i += 1

    before = threading.active_count()
    it = prefetch(items(), depth=2)
    assert [next(it) for _ in range(5)] == [0, 1, 2, 3, 4]
    it.close()  # what a `break` out of a for loop does
    deadline = time.time() + 5
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == before
    with pytest.raises(ValueError, match="depth"):
        next(prefetch([1], depth=0))


def test_the_producer_computes_with_one_torch_thread_and_the_consumer_keeps_its_own():
    import torch

    before = torch.get_num_threads()
    seen = list(prefetch(torch.get_num_threads() for _ in range(2)))
    assert seen == [1, 1] and torch.get_num_threads() == before
