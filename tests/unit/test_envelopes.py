"""Internal records in batches (streams/runtime/envelopes.py): a stage batch sends one message
per partition of a batched topic, and a reader applies each record in it as if it had come
alone."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.internal import SkuAction, SkuCommand, SkuResult
from schemas.models import Availability, StockEvent
from streams.runtime import outbox
from streams.runtime.batch_table import BatchTable
from streams.runtime.outbox import Sends
from tests.unit.batch_fakes import FakeEvent, Run
from tests.unit.factories import T0, make_stock_event

COMMANDS = "dom.internal.sku-commands.v1"
RESULTS = "dom.internal.sku-results.v1"


def command(order_id: str, sku: str) -> SkuCommand:
    return SkuCommand(
        command_id=f"{order_id}:{sku}",
        order_id=order_id,
        sku=sku,
        action=SkuAction.RESERVE,
        attempt=1,
        issued_at=T0,
    )


def partition_of(run: Run, key: str) -> int:
    """Where the run's producer puts ``key`` (its partitioner is the real producer's)."""
    return run.app.producer._partition("any", None, None, None, key.encode(), None)


class Sender:
    """A stage that sends, for each input, the records its value names."""

    def __init__(self, records: dict[str, list[Any]]) -> None:
        self.records = records

    async def handle(self, event: Any, sends: Sends) -> None:
        sends.add(self.records[event.value.decode()])


def test_a_batch_sends_one_message_per_partition_of_a_batched_topic() -> None:
    run = Run()
    skus = [f"SKU-{n}" for n in range(40)]
    commands = [command(f"O-{n}", sku) for n, sku in enumerate(skus)]
    status = Availability(sku="SKU-0", total_available=1, updated_at=T0)
    sender = Sender({"a": commands[:20], "b": [status, *commands[20:]]})
    run.batch([run.event("in", "k", b"a"), run.event("in", "k", b"b")], sender.handle)

    topic = run.settings.topic(COMMANDS)
    carried = [
        (key, value, partition)
        for (t, key, value, _), partition in zip(
            run.app.producer.sent, run.app.producer.partitions, strict=True
        )
        if t == topic
    ]
    wanted_partitions = {partition_of(run, sku) for sku in skus}
    assert sorted(p for _, _, p in carried) == sorted(wanted_partitions)  # one message each
    for key, value, partition in carried:
        inside = run.codec.unpack(value)
        assert inside is not None
        assert {partition_of(run, k.decode()) for k, _ in inside} == {partition}
        assert key == inside[0][0]
    # every command once, in the order the stage sent them within its partition
    sent = [r for r in run.records() if isinstance(r, SkuCommand)]
    assert sorted(c.command_id for c in sent) == sorted(c.command_id for c in commands)
    for partition in wanted_partitions:
        mine = [c.command_id for c in commands if partition_of(run, c.sku) == partition]
        assert [c.command_id for c in sent if partition_of(run, c.sku) == partition] == mine
    # a contract record still goes alone
    assert [r for r in run.records() if isinstance(r, Availability)] == [status]


class Reader:
    """A stage that notes what it sees of each input and counts it in its key's value."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.raw = run.table()
        self.table: BatchTable[dict[str, int]] = BatchTable(
            self.raw, json.loads, lambda v: json.dumps(v).encode()
        )
        self.seen: list[tuple[bytes, str, int, int]] = []

    async def handle(self, event: Any, sends: Sends) -> None:
        record = self.run.codec.decode_as(event.value, SkuCommand)
        if event.key != record.sku.encode():
            sends.dead_letter(event, f"key must be the sku {record.sku!r}", "test", "bad_key")
            return
        message = event.message
        self.seen.append((event.key, record.command_id, message.partition, message.offset))
        value = self.table.get(event.key) or {"n": 0}
        self.table.put(event.key, {"n": value["n"] + 1}, event)


def batch_event(run: Run, topic: str, *records: tuple[bytes, Any], partition: int = 0) -> FakeEvent:
    """The next message of ``topic``'s partition: a ``RecordBatch`` of ``records``."""
    return run.event(topic, records[0][0].decode(), packed(run, *records), partition=partition)


def packed(run: Run, *records: tuple[bytes, Any]) -> bytes:
    return run.codec.encode_batch(
        [
            (key, value if isinstance(value, bytes) else run.codec.encode(value))
            for key, value in records
        ]
    )


def test_each_record_of_a_batch_is_applied_alone_with_the_messages_place() -> None:
    run = Run()
    reader = Reader(run)
    topic = run.settings.topic(COMMANDS)
    alone = run.codec.encode(command("O-0", "SKU-1"))
    first = run.event(topic, "SKU-1", alone, partition=3)  # offset 0: a record alone
    batch = batch_event(
        run,
        topic,
        (b"SKU-1", command("O-1", "SKU-1")),
        (b"SKU-2", command("O-2", "SKU-2")),
        (b"SKU-1", command("O-3", "SKU-1")),
        partition=3,
    )
    run.batch([first, batch], reader.handle, reader.table)

    assert reader.seen == [
        (b"SKU-1", "O-0:SKU-1", 3, 0),
        (b"SKU-1", "O-1:SKU-1", 3, 1),
        (b"SKU-2", "O-2:SKU-2", 3, 1),
        (b"SKU-1", "O-3:SKU-1", 3, 1),
    ]
    assert {k.decode(): json.loads(v)["n"] for k, v in reader.raw.items()} == {
        "SKU-1": 3,
        "SKU-2": 1,
    }
    # each key's changelog record goes to the partition of the message that carried it
    assert {key: event.message.partition for key, _, event in reader.raw.writes} == {
        b"SKU-1": 3,
        b"SKU-2": 3,
    }
    assert run.letters() == []
    assert counted(run) == (4, 0)  # inputs are records: the SRE's rates mean what they did


def counted(run: Run) -> tuple[float, float]:
    """The stage's dom_stage_events_in and dom_stage_events_failed."""
    m = run.outbox.metrics
    return (
        m.events_in.labels(run.stage)._value.get(),
        m.events_failed.labels(run.stage)._value.get(),
    )


def test_a_bad_record_in_a_batch_is_dead_lettered_alone_and_the_others_apply() -> None:
    run = Run()
    reader = Reader(run)
    topic = run.settings.topic(COMMANDS)
    batch = batch_event(
        run,
        topic,
        (b"SKU-1", command("O-1", "SKU-1")),
        (b"SKU-9", command("O-2", "SKU-2")),  # under another sku's key
        (b"SKU-3", b"\xc3\x01not avro"),
        (b"SKU-4", command("O-4", "SKU-4")),
    )
    run.batch([batch], reader.handle, reader.table)

    assert [seen[1] for seen in reader.seen] == ["O-1:SKU-1", "O-4:SKU-4"]
    letters = run.letters()
    assert [(letter.key, letter.stage) for letter in letters] == [
        (b"SKU-9", "test"),
        (b"SKU-3", "test"),
    ]
    assert "key must be the sku 'SKU-2'" in letters[0].error
    assert letters[0].value == run.codec.encode(command("O-2", "SKU-2"))
    assert letters[1].value == b"\xc3\x01not avro"


def test_a_batch_that_cannot_be_read_is_dead_lettered_whole_with_the_reason() -> None:
    run = Run()
    reader = Reader(run)
    topic = run.settings.topic(RESULTS)
    whole = packed(run, (b"O-1", command("O-1", "SKU-1")))
    broken = whole[:-3]
    run.batch([run.event(topic, "O-1", broken)], reader.handle, reader.table)

    assert reader.seen == []
    [letter] = run.letters()
    assert letter.value == broken
    assert "corrupt RecordBatch body" in letter.error
    assert counted(run) == (1, 1)


def test_a_topic_neither_batched_nor_packable_never_unpacks() -> None:
    run = Run()
    seen: list[bytes] = []

    async def handle(event: Any, sends: Sends) -> None:
        seen.append(event.value)

    value = packed(run, (b"O-1", command("O-1", "SKU-1")))
    run.batch([run.event(run.settings.topic("dom.orders.v1"), "O-1", value)], handle)
    assert seen == [value]


class StockReader:
    """A stage that notes the stock events it is given."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.seen: list[tuple[bytes, str, int, int]] = []

    async def handle(self, event: Any, sends: Sends) -> None:
        record = self.run.codec.decode_as(event.value, StockEvent)
        message = event.message
        self.seen.append((event.key, record.event_id, message.partition, message.offset))


def stock(sku: str, n: int) -> StockEvent:
    return make_stock_event(sku, "DC-1", n, event_id=f"count-{sku}-{n}")


def test_a_bulk_producers_packed_stock_is_applied_record_by_record() -> None:
    run = Run()
    reader = StockReader(run)
    topic = run.settings.topic("dom.stock.v1")
    skus = [f"SKU-{n}" for n in range(30)]
    here = [sku for sku in skus if partition_of(run, sku) == 2]
    alone = run.event(topic, here[0], run.codec.encode(stock(here[0], 1)), partition=2)
    carrier = batch_event(run, topic, *[(s.encode(), stock(s, 2)) for s in here], partition=2)
    run.batch([alone, carrier], reader.handle)

    assert reader.seen == [(here[0].encode(), f"count-{here[0]}-1", 2, 0)] + [
        (sku.encode(), f"count-{sku}-2", 2, 1) for sku in here
    ]
    assert run.letters() == []
    assert counted(run) == (1 + len(here), 0)


def test_a_packed_record_in_another_partition_than_its_keys_is_dead_lettered_alone() -> None:
    run = Run()
    reader = StockReader(run)
    topic = run.settings.topic("dom.stock.v1")
    skus = [f"SKU-{n}" for n in range(30)]
    here = [sku for sku in skus if partition_of(run, sku) == 2][:2]
    away = next(sku for sku in skus if partition_of(run, sku) == 5)
    carrier = batch_event(
        run,
        topic,
        (here[0].encode(), stock(here[0], 1)),
        (away.encode(), stock(away, 1)),  # its key's owner reads partition 5
        (here[1].encode(), stock(here[1], 1)),
        partition=2,
    )
    run.batch([carrier], reader.handle)

    assert [seen[0] for seen in reader.seen] == [here[0].encode(), here[1].encode()]
    [letter] = run.letters()
    assert (letter.key, letter.value) == (away.encode(), run.codec.encode(stock(away, 1)))
    assert letter.error == (
        f"packed in partition 2 of {topic}, but its key belongs in partition 5: pack each "
        "record in its key's partition (murmur2, as Kafka's Java client places a keyed record)"
    )
    assert letter.headers["dom.source.partition"] == "2"
    assert counted(run) == (3, 1)


def test_internal_batches_are_not_checked_for_placement() -> None:
    # The pipeline packs its own records with the producer's partitioner: no cost per record.
    run = Run()
    reader = Reader(run)
    topic = run.settings.topic(COMMANDS)
    away = next(f"SKU-{n}" for n in range(30) if partition_of(run, f"SKU-{n}") != 0)
    run.batch(
        [batch_event(run, topic, (away.encode(), command("O-1", away)), partition=0)],
        reader.handle,
        reader.table,
    )
    assert [seen[1] for seen in reader.seen] == [f"O-1:{away}"]
    assert run.letters() == []


def test_results_to_one_order_keep_their_order_in_one_message() -> None:
    run = Run()
    results = [
        SkuResult(
            command_id=f"c{n}",
            order_id="O-1",
            sku=f"SKU-{n}",
            action=SkuAction.RESERVE,
            attempt=1,
            ok=True,
            at=T0,
        )
        for n in range(5)
    ]
    run.batch([run.event("in", "k", b"a")], Sender({"a": results}).handle)
    [(topic, key, _, _)] = run.app.producer.sent
    assert (topic, key) == (run.settings.topic(RESULTS), b"O-1")
    assert run.records() == results


class StockCounter:
    """A stage that counts the stock events of each sku in its table, and notes where the
    batch that applied each one began."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.raw = run.table()
        self.table: BatchTable[dict[str, int]] = BatchTable(
            self.raw, json.loads, lambda v: json.dumps(v).encode()
        )
        self.began: list[dict[tuple[str, int], int]] = []

    async def handle(self, event: Any, sends: Sends) -> None:
        self.run.codec.decode_as(event.value, StockEvent)
        if not self.began or self.began[-1] != sends.batch_from:
            self.began.append(dict(sends.batch_from))
        value = self.table.get(event.key) or {"n": 0}
        self.table.put(event.key, {"n": value["n"] + 1}, event)


def test_a_batch_is_cut_where_a_key_would_get_more_than_a_batchs_inputs() -> None:
    # A sku remembers the ids of as many stock events as a replay of its last batch can reach:
    # a packed file of one sku's thousand sales is applied in parts, each a batch of its own.
    run = Run()
    counter = StockCounter(run)
    topic = run.settings.topic("dom.stock.v1")
    sku = next(f"SKU-{n}" for n in range(30) if partition_of(run, f"SKU-{n}") == 0)
    messages = [
        batch_event(run, topic, *[(sku.encode(), stock(sku, 300 * m + n)) for n in range(300)])
        for m in range(3)
    ]
    run.batch(messages, counter.handle, counter.table)

    assert json.loads(counter.raw[sku.encode()]) == {"n": 900}
    assert run.log == [f"write {sku}", "flush"] * 3  # 300 + 300 is past 500: three parts
    assert counter.began == [{(topic, 0): 0}, {(topic, 0): 1}, {(topic, 0): 2}]
    assert counted(run) == (900, 0)


def test_a_packed_message_with_more_than_a_batchs_records_of_one_key_is_dead_lettered() -> None:
    run = Run()
    counter = StockCounter(run)
    topic = run.settings.topic("dom.stock.v1")
    sku = next(f"SKU-{n}" for n in range(30) if partition_of(run, f"SKU-{n}") == 0)
    too_many = batch_event(run, topic, *[(sku.encode(), stock(sku, n)) for n in range(501)])
    run.batch([too_many], counter.handle, counter.table)

    assert counter.began == []
    [letter] = run.letters()
    assert letter.value == too_many.value
    assert letter.error == (
        f"a packed message carries 501 records of key {sku.encode()!r}, more than the 500 a "
        "stage applies of one key at once: pack at most 500 records of one key in a message"
    )
    assert counted(run) == (1, 1)


@pytest.mark.parametrize(
    ("part_max", "flushes", "began"),
    [
        (outbox.PART_MAX, 1, [0]),  # 900 records of 300 skus: one batch
        (600, 2, [0, 2]),  # 300 + 300, then 300
    ],
)
def test_a_batch_is_cut_where_its_packed_records_would_pass_a_parts_most(
    monkeypatch: pytest.MonkeyPatch, part_max: int, flushes: int, began: list[int]
) -> None:
    monkeypatch.setattr(outbox, "PART_MAX", part_max)
    run = Run()
    counter = StockCounter(run)
    topic = run.settings.topic("dom.stock.v1")
    skus = [f"SKU-{n}" for n in range(2000) if partition_of(run, f"SKU-{n}") == 0][:300]
    messages = [
        batch_event(run, topic, *[(sku.encode(), stock(sku, m)) for sku in skus]) for m in range(3)
    ]
    run.batch(messages, counter.handle, counter.table)

    assert run.log.count("flush") == flushes
    assert counter.began == [{(topic, 0): offset} for offset in began]
    assert {json.loads(counter.raw[sku.encode()])["n"] for sku in skus} == {3}
