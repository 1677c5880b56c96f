"""A stage's table as one batch sees it: each key decoded once and written back once.

Several inputs of a batch often touch one key: the answers for one order's skus, the
commands on one busy sku. Every ``table[k] = v`` is an encode and a changelog record (and a
trip through Faust's producer buffer), so the batch keeps the values it read, decoded, and
writes each changed key once, just before the batch's flush (:mod:`streams.outbox`): the
"state before records" order is unchanged, the intermediate values were never visible to
anyone. A write lands in the changelog partition of the last input that changed the key,
which is the partition of every input with that key.

Values are forgotten at the end of every batch: the next batch reads the table again, so a
partition that moved to another worker and back is never served from a stale copy.

A value the stage mutates in place (the order saga's state) is restored when an input fails
half-way: :meth:`BatchTable.rollback` puts back the value as it was before that input, from
its encoded form taken when the input read it. A first read keeps the table's own bytes for
that, so only a key touched twice in one batch pays an extra encode.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from faust.streams import _current_event

V = TypeVar("V")


class BatchTable(Generic[V]):
    """Decoded values of one Faust table for the batch under way."""

    def __init__(
        self,
        table: Any,
        decode: Callable[[bytes], V],
        encode: Callable[[V], bytes],
        *,
        mutable: bool = False,
    ) -> None:
        self.table = table
        self._decode = decode
        self._encode = encode
        self._mutable = mutable
        self._values: dict[bytes, V | None] = {}
        self._changed_by: dict[bytes, Any] = {}  # key -> the last input event that changed it
        self._before: dict[bytes, bytes | None] = {}  # key -> encoded value before this input

    def get(self, key: bytes) -> V | None:
        """The key's value as the batch's earlier inputs left it (None: no value yet)."""
        if key in self._values:
            value = self._values[key]
            if self._mutable:
                self._before[key] = None if value is None else self._encode(value)
            return value
        raw = self.table.get(key)
        value = self._decode(raw) if raw else None
        self._values[key] = value
        if self._mutable:
            self._before[key] = raw or None
        return value

    def put(self, key: bytes, value: V, event: Any) -> None:
        """The key's new value, written back at the end of the batch in ``event``'s partition."""
        self._values[key] = value
        self._changed_by[key] = event

    def rollback(self, key: bytes) -> None:
        """Forget what a failed input did to the key's value (it may have mutated it)."""
        if key in self._before:
            raw = self._before.pop(key)
            self._values[key] = self._decode(raw) if raw else None
        # An immutable value changes only through put(), which the failure skipped.

    def write_back(self) -> dict[bytes, V]:
        """Write every changed key once; return the changed values and forget the batch."""
        changed: dict[bytes, V] = {}
        for key, event in self._changed_by.items():
            value = self._values[key]
            if value is None:
                continue
            # Faust writes a table's changelog to the partition of the current event.
            _current_event.set(weakref.ref(event))
            self.table[key] = self._encode(value)
            changed[key] = value
        self._values.clear()
        self._changed_by.clear()
        self._before.clear()
        return changed
