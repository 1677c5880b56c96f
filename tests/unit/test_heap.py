"""The worker's heap settler: what survived a full collection is frozen, and a periodic thaw
still collects a garbage cycle that was frozen while alive."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from streams.heap import HeapSettler


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_what_survived_a_full_collection_is_frozen() -> None:
    settler = HeapSettler(thaw_seconds=3600)
    survivor = Node()
    gc.collect()
    settler.on_gc("stop", {"generation": 2, "collected": 0, "uncollectable": 0})

    settler.settle()

    assert settler.freezes == 1
    assert gc.get_freeze_count() > 0
    assert not any(o is survivor for o in gc.get_objects())  # out of the passes now


def test_nothing_is_frozen_without_a_full_collection() -> None:
    settler = HeapSettler(thaw_seconds=3600)
    settler.on_gc("start", {"generation": 2})  # a full pass started, not yet done
    settler.on_gc("stop", {"generation": 0, "collected": 0, "uncollectable": 0})
    settler.on_gc("stop", {"generation": 1, "collected": 0, "uncollectable": 0})

    settler.settle()

    assert settler.freezes == 0
    assert gc.get_freeze_count() == 0


def test_a_frozen_cycle_that_became_garbage_is_collected_at_the_thaw() -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    freezer = HeapSettler(thaw_seconds=3600)
    freezer.on_gc("stop", {"generation": 2, "collected": 0, "uncollectable": 0})
    freezer.settle()  # the live cycle is frozen
    del a, b
    gc.collect()
    assert gone() is not None  # frozen: the collector no longer looks at it

    thawer = HeapSettler(thaw_seconds=0)  # its thaw is due at once
    thawer.settle()

    assert gone() is None
    assert thawer.thaws == 1
    assert gc.get_freeze_count() > 0  # and what is alive is frozen again
