"""Units a worker has asked the sku owners to hold that its view of availability may not show
yet, so that routing does not send two orders after the same last units.

The view learns a reservation from the sku owner's availability record, which comes after the
owner applied it; until then every order routed on that worker sees the units as free. Orders
for a bestseller close to selling out, routed in one batch or a few batches apart, all picked
the same location: all but one lost the race at the owner, released what they held of their
other skus and were routed again (4 to 10% of the orders of a ``dom bench`` run), each loss a
round trip more of latency and of messages.

A promise lives from the reservation command to the moment the view shows it. When the sku's
owner is the same worker, that is when its inventory stage has applied the command: it puts the
figures after it in the view at once (:meth:`Promised.shown`). Another worker's answer comes
back as a result: a refusal holds nothing, and a grant counts until the view's record of the
sku is at least as new as the answer (both carry the time of the owner's input, so the record
that includes the hold is as new as the answer). A promise whose answer never comes
(the owner's partition moved, or the worker's) is forgotten after ``ttl_ms``. The two workers'
commands interleave on an owner's partition with their own producers' timestamps, so a record
may be stamped a few milliseconds off: a promise then counts until the next record or
``ttl_ms``, or stops counting a batch early, and that order races as it would without this.

Routing only steers with it (``_decide`` in :mod:`streams.core.saga.apply`): what it
subtracts may briefly be in the view already, so a route that serves fewer units or needs more
shipments than the view as it is would give is never taken for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

TTL_MS = 10_000
"""How long a promise is counted at most: longer than an owner's answer and the record after it
take under load (tens to hundreds of milliseconds; seconds behind a backlog of thousands of
orders placed at once)."""


@dataclass(slots=True)
class _Promise:
    order_id: str
    sku: str
    holds: tuple[tuple[str, int], ...]  # (location_id, units)
    sent_ms: int
    granted_ms: int | None = None  # the owner's time of the granted hold (its answer's time)


class Promised:
    """The worker's promises in flight, by reservation command id."""

    def __init__(self, ttl_ms: int = TTL_MS) -> None:
        self.ttl_ms = ttl_ms
        self._by_command: dict[str, _Promise] = {}
        self._by_sku: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._by_command)

    def asked(
        self,
        command_id: str,
        order_id: str,
        sku: str,
        holds: Iterable[tuple[str, int]],
        now_ms: int,
    ) -> None:
        """A reservation was sent (a repeat of one still counted changes nothing)."""
        if command_id in self._by_command:
            return
        self._by_command[command_id] = _Promise(order_id, sku, tuple(holds), now_ms)
        self._by_sku.setdefault(sku, set()).add(command_id)

    def answered(self, command_id: str, ok: bool, at_ms: int) -> None:
        """The owner's answer: a refusal holds nothing; a grant counts until the view shows it."""
        promise = self._by_command.get(command_id)
        if promise is None:
            return
        if ok:
            promise.granted_ms = at_ms
        else:
            self._drop(command_id, promise)

    def shown(self, command_ids: Iterable[str]) -> None:
        """The owner of these commands' skus is this worker: it applied them and has put the
        figures after them in the view itself, so they are no promises any more."""
        for command_id in command_ids:
            promise = self._by_command.get(command_id)
            if promise is not None:
                self._drop(command_id, promise)

    def units(self, sku: str, order_id: str, view_ms: int | None, now_ms: int) -> dict[str, int]:
        """location_id -> units of ``sku`` promised to orders other than ``order_id`` that the
        view (its record of ``sku`` stamped ``view_ms``, None: no record) does not show yet.
        Promises the view shows or past ``ttl_ms`` are dropped on the way."""
        ids = self._by_sku.get(sku)
        if not ids:
            return {}
        taken: dict[str, int] = {}
        for command_id in list(ids):
            promise = self._by_command[command_id]
            granted = promise.granted_ms
            shown = granted is not None and view_ms is not None and granted <= view_ms
            if shown or now_ms - promise.sent_ms > self.ttl_ms:
                self._drop(command_id, promise)
            elif promise.order_id != order_id:
                for location_id, quantity in promise.holds:
                    taken[location_id] = taken.get(location_id, 0) + quantity
        return taken

    def forget_expired(self, now_ms: int) -> None:
        """Drop every promise past ``ttl_ms`` (those of skus no order asks about any more)."""
        for command_id, promise in list(self._by_command.items()):
            if now_ms - promise.sent_ms > self.ttl_ms:
                self._drop(command_id, promise)

    def _drop(self, command_id: str, promise: _Promise) -> None:
        del self._by_command[command_id]
        ids = self._by_sku[promise.sku]
        ids.discard(command_id)
        if not ids:
            del self._by_sku[promise.sku]
