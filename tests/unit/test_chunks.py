"""Table values larger than a record: stored in chunks, read back whole, never half."""

from __future__ import annotations

import os
from typing import Any

import pytest

from streams.runtime.chunks import (
    CHUNK_KEY,
    MANIFEST,
    ChunkedTable,
    ChunkedValueBroken,
    chunk_key,
)


class Store(dict[bytes, bytes]):
    """A table as Faust's behaves for these calls, with every write and delete in order (what
    the changelog would carry)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[bytes, bytes | None]] = []

    def __setitem__(self, key: bytes, value: bytes) -> None:
        super().__setitem__(key, value)
        self.log.append((key, value))

    def __delitem__(self, key: bytes) -> None:
        self.pop(key, None)  # Faust's delete of a missing key is a tombstone all the same
        self.log.append((key, None))


def table(chunk_bytes: int = 1000) -> tuple[ChunkedTable, Store]:
    store = Store()
    return ChunkedTable(store, chunk_bytes), store


def test_a_value_that_fits_a_record_is_stored_as_it_is() -> None:
    chunked, store = table()
    chunked[b"SKU-1"] = b"{" + b"x" * 998 + b"}"
    assert store.log == [(b"SKU-1", b"{" + b"x" * 998 + b"}")]
    assert chunked.get(b"SKU-1") == chunked[b"SKU-1"] == store[b"SKU-1"]


def test_a_larger_value_goes_in_chunks_no_larger_than_the_limit_and_reads_back_whole() -> None:
    chunked, store = table()
    value = os.urandom(3500)
    chunked[b"SKU-1"] = value

    assert chunked.get(b"SKU-1") == value
    # the chunks first, then the key's manifest: a crash in between leaves the old value whole
    written = [key for key, _ in store.log]
    assert written == [chunk_key(b"SKU-1", 1, n) for n in range(4)] + [b"SKU-1"]
    assert all(len(v or b"") <= 1000 for _, v in store.log)
    assert store[b"SKU-1"].startswith(MANIFEST)


def test_scans_skip_the_chunks_and_answer_whole_values() -> None:
    chunked, _ = table()
    big, small = os.urandom(2500), b'{"sku":"SKU-2"}'
    chunked[b"SKU-1"] = big
    chunked[b"SKU-2"] = small
    assert dict(chunked.items()) == {b"SKU-1": big, b"SKU-2": small}
    assert sorted(chunked.keys()) == [b"SKU-1", b"SKU-2"]
    assert sorted(chunked.values()) == sorted([big, small])


def test_a_scan_read_in_slices_reads_a_value_replaced_since_it_began_whole() -> None:
    # RocksDB's iterator reads the table as it was when the scan began, while the stage writes
    # on between slices: the manifest it holds may name chunks a newer value dropped.
    store = SnapshotStore()
    chunked = ChunkedTable(store, 1000)
    chunked[b"SKU-1"] = b'{"sku":"SKU-1"}'
    chunked[b"SKU-2"] = os.urandom(2500)
    store.take_snapshot()
    scan = chunked.items()
    assert next(scan) == (b"SKU-1", b'{"sku":"SKU-1"}')
    newer = os.urandom(3500)
    chunked[b"SKU-2"] = newer

    assert list(scan) == [(b"SKU-2", newer)]


class SnapshotStore(Store):
    """A table whose scans read it as it was at :meth:`take_snapshot`, as RocksDB's
    iterators read it as it was when they were made."""

    def __init__(self) -> None:
        super().__init__()
        self.snapshot: dict[bytes, bytes] = {}

    def take_snapshot(self) -> None:
        self.snapshot = dict(self)

    def items(self) -> Any:
        return iter(list(self.snapshot.items()))


def test_a_new_value_drops_the_chunks_of_the_one_it_replaces_after_it_is_written() -> None:
    chunked, store = table()
    chunked[b"SKU-1"] = os.urandom(2500)  # version 1: 3 chunks
    store.log.clear()
    newer = os.urandom(1500)
    chunked[b"SKU-1"] = newer  # version 2: 2 chunks, then version 1's 3 deleted

    assert [key for key, _ in store.log] == [
        chunk_key(b"SKU-1", 2, 0),
        chunk_key(b"SKU-1", 2, 1),
        b"SKU-1",
        chunk_key(b"SKU-1", 1, 0),
        chunk_key(b"SKU-1", 1, 1),
        chunk_key(b"SKU-1", 1, 2),
    ]
    assert [value for _, value in store.log[3:]] == [None, None, None]  # tombstones
    assert chunked.get(b"SKU-1") == newer
    assert sorted(k for k in store if k.startswith(CHUNK_KEY)) == [
        chunk_key(b"SKU-1", 2, 0),
        chunk_key(b"SKU-1", 2, 1),
    ]

    chunked[b"SKU-1"] = b"{}"  # small again: stored as it is, every chunk gone
    assert dict(store) == {b"SKU-1": b"{}"}


def test_deleting_a_chunked_value_deletes_its_chunks() -> None:
    chunked, store = table()
    chunked[b"SKU-1"] = os.urandom(2500)
    del chunked[b"SKU-1"]
    assert dict(store) == {}
    assert chunked.get(b"SKU-1") is None
    with pytest.raises(KeyError):
        chunked[b"SKU-1"]


def test_a_crash_between_the_chunks_and_the_key_leaves_the_old_value_and_no_harm() -> None:
    chunked, store = table()
    old = os.urandom(2500)
    chunked[b"SKU-1"] = old
    # a write of version 2 stopped after its first chunk: the key still names version 1
    store[chunk_key(b"SKU-1", 2, 0)] = b"half of something"
    assert chunked.get(b"SKU-1") == old
    # the next write reuses version 2 and overwrites what the crash left
    newer = os.urandom(1800)
    chunked[b"SKU-1"] = newer
    assert chunked.get(b"SKU-1") == newer
    assert sorted(k for k in store if k.startswith(CHUNK_KEY)) == [
        chunk_key(b"SKU-1", 2, 0),
        chunk_key(b"SKU-1", 2, 1),
    ]


@pytest.mark.parametrize(
    "damage",
    [
        lambda store: store.pop(chunk_key(b"SKU-1", 1, 1)),
        lambda store: store.__setitem__(chunk_key(b"SKU-1", 1, 1), b"\x00" * 1000),
    ],
    ids=["missing chunk", "chunk of other bytes"],
)
def test_a_value_whose_chunks_do_not_add_up_is_refused_naming_its_key(damage: Any) -> None:
    chunked, store = table()
    chunked[b"SKU-1"] = os.urandom(2500)
    damage(store)
    with pytest.raises(ChunkedValueBroken, match="SKU-1"):
        chunked.get(b"SKU-1")


def test_what_the_table_itself_has_is_still_reached() -> None:
    store = Store()
    store.changelog_topic_name = "dom-inventory-changelog"  # type: ignore[attr-defined]
    chunked = ChunkedTable(store, 1000)
    assert chunked.changelog_topic_name == "dom-inventory-changelog"
    assert b"SKU-1" not in chunked
    chunked[b"SKU-1"] = b"{}"
    assert b"SKU-1" in chunked
