"""A stage's table through decoded values: each key decoded once, written once per batch.

Several inputs of a batch often touch one key: the answers for one order's skus, the
commands on one busy sku. Every ``table[k] = v`` is an encode and a changelog record (and a
trip through Faust's producer buffer), so the batch keeps the values it touched, decoded, and
writes each changed key once, just before the batch's flush (:mod:`streams.runtime.outbox`): the
"state before records" order is unchanged, the intermediate values were never visible to
anyone. A write lands in the changelog partition of the last input that changed the key,
which is the partition of every input with that key.

Decoded values are also kept across batches (the most recently used ``keep`` of them): an
order is touched by its placement and then by each sku's answer, a few batches apart, and
decoding its state was the largest single cost of the order stage. That is safe only while
this worker alone writes the key, which Kafka guarantees within one consumer generation: a
rebalance (a new generation) may move the partition away and back, and Faust recovers the
table from the changelog then, so every kept value is forgotten when the generation changes.

A value the stage mutates in place (the order saga's state) is restored when an input fails
half-way: :meth:`BatchTable.rollback` puts back the value as it was before that input, from
the table (its value is the kept one when the batch has not changed the key yet) or, for a
key the batch already changed, from the encoding taken when the failing input read it.

A stage may give a ``settle`` function: what a changed value becomes once the batch is done
with it, just before it is encoded (the inventory's channel figures, figured once per sku and
batch however many inputs changed it). The settled value is the one written, kept, and given
to the stage's ``finish``.

The write-back is in two steps so that a value that cannot be stored stops only the inputs
that made it (:mod:`streams.runtime.outbox`): :meth:`BatchTable.encode_changed` encodes every
changed key and reports those that fail; :meth:`BatchTable.reset` and :meth:`BatchTable.restore`
put a key back to the table's value or to an encoding that passed, while its inputs are applied
again one by one; :meth:`BatchTable.write_back` then writes what the batch kept.

A change may wait (``put(..., lazy=True)``): a change that caused no record, and that a later
input of the key is sure to change again (an order's state after one sku's answer, while the
others are still awaited). It is kept, decoded, and written with the key's next change that
may not wait, so the key costs one changelog record where it cost one per batch. Until then
the inputs that made it must not be committed: the outbox holds their acknowledgements
(:mod:`streams.runtime.acks`), and a crash reads them again against the value the table holds.
A new generation forgets such a change with its value: its inputs are read again by whoever
owns the partition now.
"""

from __future__ import annotations

import itertools
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Collection
from typing import Any, Generic, TypeVar

from faust.streams import _current_event

V = TypeVar("V")

_IN_TABLE = object()
"""Marks a value that is the same as the table's: restore it by reading the table."""


class BatchTable(Generic[V]):
    """Decoded values of one Faust table, for the batch under way and a few batches on."""

    def __init__(
        self,
        table: Any,
        decode: Callable[[bytes], V],
        encode: Callable[[V], bytes],
        *,
        mutable: bool = False,
        keep: int = 0,
        settle: Callable[[bytes, V], V] | None = None,
    ) -> None:
        self.table = table
        self._settle = settle
        self._decode = decode
        self._encode = encode
        self._mutable = mutable
        self._keep = keep
        self._generation: object = None
        self._values: OrderedDict[bytes, V | None] = OrderedDict()
        self._changed_by: dict[bytes, Any] = {}  # key -> the last input event that changed it
        self._before: dict[bytes, object] = {}  # key -> encoded value before this input
        self._encoded: dict[bytes, bytes] = {}  # key -> its changed value, encoded for writing
        self._removed: set[bytes] = set()  # keys to delete at the write-back (a tombstone)
        self._lazy: dict[bytes, float] = {}
        """Changed keys whose every change since their last write may wait: when the first was
        made (monotonic seconds). Not written back until :meth:`write_now` or a change that
        may not wait."""

    def follow(self, generation: object) -> None:
        """The consumer generation of the input about to be applied; a new one forgets every
        kept value the batch has not changed (those are still written back), and every change
        that waits, with its value (its inputs are read again from the committed offsets)."""
        if generation == self._generation:
            return
        self._generation = generation
        for key in self._lazy:
            self._changed_by.pop(key, None)
            self._before.pop(key, None)
            self._encoded.pop(key, None)
        self._lazy.clear()
        for key in [k for k in self._values if k not in self._changed_by]:
            del self._values[key]

    def get(self, key: bytes) -> V | None:
        """The key's value as the earlier inputs left it (None: no value yet)."""
        if key in self._values:
            self._values.move_to_end(key)
            value = self._values[key]
            if self._mutable:
                self._before[key] = self._snapshot(key, value)
            return value
        raw = self.table.get(key)
        value = self._decode(raw) if raw else None
        self._values[key] = value
        if self._mutable:
            self._before[key] = raw or None
        return value

    def _snapshot(self, key: bytes, value: V | None) -> object:
        if key not in self._changed_by:
            return _IN_TABLE  # written back (or never changed): the table holds this value
        return None if value is None else self._encode(value)

    def put(self, key: bytes, value: V, event: Any, *, lazy: bool = False) -> None:
        """The key's new value, written back at the end of the batch in ``event``'s partition;
        ``lazy``: the change may wait for the key's next one (see the module docstring), unless
        a change of the key not yet written may not."""
        if not lazy:
            self._lazy.pop(key, None)
        elif key not in self._changed_by:
            self._lazy[key] = time.monotonic()
        self._values[key] = value
        self._changed_by[key] = event
        self._encoded.pop(key, None)
        self._removed.discard(key)

    def waiting(self) -> dict[bytes, float]:
        """The changed keys whose changes wait, and since when (monotonic seconds)."""
        return dict(self._lazy)

    def write_now(self, keys: Collection[bytes]) -> None:
        """Write these keys' waiting changes at this batch's write-back after all."""
        for key in keys:
            self._lazy.pop(key, None)

    def remove(self, key: bytes, event: Any) -> None:
        """Delete the key at the end of the batch (a tombstone in ``event``'s partition of the
        changelog); until then :meth:`get` answers None, as for a key never written."""
        self._lazy.pop(key, None)
        self._values[key] = None
        self._changed_by[key] = event
        self._encoded.pop(key, None)
        self._removed.add(key)

    def last_input(self, key: bytes) -> Any:
        """The batch's last input that changed the key (None: the batch has not changed it)."""
        return self._changed_by.get(key)

    def rollback(self, key: bytes) -> None:
        """Forget what a failed input did to the key's value (it may have mutated it)."""
        if key in self._before:
            before = self._before.pop(key)
            raw = self.table.get(key) if before is _IN_TABLE else before
            self._values[key] = self._decode(raw) if isinstance(raw, bytes) and raw else None
        # An immutable value changes only through put(), which the failure skipped.

    def encode_changed(self) -> tuple[dict[bytes, V], dict[bytes, str]]:
        """Encode every changed key for the write-back: the values that encoded, and why each
        of the others did not (its inputs are then applied again one by one)."""
        values: dict[bytes, V] = {}
        errors: dict[bytes, str] = {}
        for key in self._changed_by:
            value = self._values[key]
            if value is None or key in self._lazy:
                continue
            try:
                value = self._settled(key, value)
                self._encoded[key] = self._encode(value)
            except Exception as exc:  # a value the input made that cannot be stored
                errors[key] = f"cannot store the new value of {key!r}: {exc!r}"
            else:
                values[key] = value
        return values, errors

    def encode_key(self, key: bytes) -> tuple[bytes, V]:
        """The key's changed value, encoded for the write-back (raises if it cannot be)."""
        value = self._values[key]
        if value is None:  # cannot happen: put() takes a value
            raise ValueError(f"{key!r} has no value to store")
        value = self._settled(key, value)
        raw = self._encode(value)
        self._encoded[key] = raw
        return raw, value

    def _settled(self, key: bytes, value: V) -> V:
        """The key's changed value as the stage settles it for the write-back (kept so)."""
        if self._settle is None:
            return value
        settled = self._settle(key, value)
        self._values[key] = settled
        return settled

    def reset(self, key: bytes) -> None:
        """Forget what the batch did to the key: its value is the table's again (changes of
        earlier batches that waited are forgotten too: the caller applies their inputs
        again)."""
        self._lazy.pop(key, None)
        self._changed_by.pop(key, None)
        self._before.pop(key, None)
        self._encoded.pop(key, None)
        self._removed.discard(key)
        raw = self.table.get(key)
        self._values[key] = self._decode(raw) if raw else None

    def restore(self, key: bytes, raw: bytes | None, event: Any) -> None:
        """Put the key back to ``raw``, the encoding of its value after ``event`` (from
        :meth:`encode_key`); ``event`` None: to the table's value."""
        if raw is None or event is None:
            self.reset(key)
            return
        self._values[key] = self._decode(raw)
        self._changed_by[key] = event
        self._before.pop(key, None)
        self._encoded[key] = raw
        self._removed.discard(key)

    def write_back(self) -> dict[bytes, V]:
        """Write every changed key once (encoded now unless :meth:`encode_changed` did it),
        but those whose changes wait; return the values written."""
        changed: dict[bytes, V] = {}
        for key, event in self._changed_by.items():
            if key in self._lazy:
                continue
            value = self._values[key]
            if key in self._removed:
                _current_event.set(weakref.ref(event))
                del self.table[key]  # a tombstone even if the store lost it: deletes are idempotent
                continue
            if value is None:
                continue
            raw = self._encoded.get(key)
            # Faust writes a table's changelog to the partition of the current event.
            _current_event.set(weakref.ref(event))
            self.table[key] = self._encode(value) if raw is None else raw
            changed[key] = value
        waiting = {key: self._changed_by[key] for key in self._lazy}
        self._changed_by = waiting  # still to be written, with their last input
        self._before.clear()
        self._encoded.clear()
        self._removed.clear()
        excess = len(self._values) - self._keep - len(waiting)
        if excess > 0:  # the least recently used go, but those whose changes wait
            for key in list(
                itertools.islice((k for k in self._values if k not in waiting), excess)
            ):
                del self._values[key]
        return changed
