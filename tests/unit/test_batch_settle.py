"""A table's ``settle``: what a changed value becomes once per batch, before it is written (the
inventory's channel figures). The settled value is the one stored and the one ``finish``
sees; when the work after the batch fails for a key, each good input's settling sends what it
published, so a ``finish`` that publishes only what changed loses nothing."""

from __future__ import annotations

import json
from typing import Any

from schemas.models import Availability
from streams.runtime.batch_table import BatchTable
from streams.runtime.outbox import Sends
from tests.unit.batch_fakes import LoggedTable, Run
from tests.unit.factories import T0

LIMIT = 100


class Published:
    """A stage that adds each input's amount to its key's count; settling notes the count as
    published and ``finish`` publishes it only when it moved (and refuses one above LIMIT)."""

    def __init__(self, run: Run, table: LoggedTable) -> None:
        self.run = run
        self.settled = 0
        self.news: dict[bytes, int | None] = {}
        self.table: BatchTable[dict[str, int]] = BatchTable(
            table, json.loads, lambda v: json.dumps(v).encode(), settle=self.settle
        )

    def settle(self, key: bytes, value: dict[str, int]) -> dict[str, int]:
        self.settled += 1
        moved = value["n"] != value.get("published")
        self.news[key] = value["n"] if moved else None
        return {**value, "published": value["n"]}

    async def handle(self, event: Any, sends: Sends) -> None:
        value = self.table.get(event.key) or {"n": 0}
        self.table.put(event.key, {**value, "n": value["n"] + json.loads(event.value)}, event)

    def finish(self, changed: dict[bytes, dict[str, int]], sends: Sends) -> None:
        for key, value in changed.items():
            if value["n"] > LIMIT:
                raise ValueError(f"{value['n']} is above {LIMIT}")
            if self.news.get(key) is not None:
                sends.add(
                    [Availability(sku=key.decode(), total_available=value["n"], updated_at=T0)]
                )

    def batch(self, *amounts: tuple[str, int]) -> None:
        events = [self.run.event("inputs", key, json.dumps(n).encode()) for key, n in amounts]
        self.run.batch(events, self.handle, self.table, self.finish)


def published(run: Run) -> list[tuple[str, int]]:
    return [(r.sku, r.total_available) for r in run.records() if isinstance(r, Availability)]


def test_each_changed_value_is_settled_once_per_batch_and_stored_settled() -> None:
    run = Run()
    table = run.table()
    stage = Published(run, table)
    stage.batch(("A", 1), ("A", 2), ("B", 1), ("A", 3))
    assert stage.settled == 2
    assert json.loads(table[b"A"]) == {"n": 6, "published": 6}
    assert published(run) == [("A", 6), ("B", 1)]
    stage.batch(("A", 0))  # nothing moved: settled, stored, nothing published
    assert published(run) == [("A", 6), ("B", 1)]


def test_a_key_applied_again_input_by_input_sends_what_each_good_input_published() -> None:
    run = Run()
    table = run.table()
    stage = Published(run, table)
    # A+5 publishes 5; A+200 cannot be finished (refused); A+0 moves nothing. Had only the
    # last good input's records gone out, nobody would ever have heard of the 5.
    stage.batch(("A", 5), ("A", 200), ("A", 0))
    assert len(run.letters()) == 1
    assert published(run) == [("A", 5)]
    assert json.loads(table[b"A"]) == {"n": 5, "published": 5}
