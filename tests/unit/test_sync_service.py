"""The sync service's handling of messages, with a channel that answers as told and a producer
that keeps what it is given (no broker, no HTTP): retries with backoff, throttling that does
not use up attempts, give-ups and exhausted retries on the dead-letter topic with the reason,
repeats not made twice, operator retries."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from config.settings import Settings
from connectors.sync.backoff import Backoff
from connectors.sync.calls import Done
from connectors.sync.http import GiveUp, TryAgain
from connectors.sync.service import SyncService
from connectors.sync.stock import Pushed
from schemas.channels import ChannelCall
from schemas.codec import Codec
from schemas.dlq import HEADER_ERROR, HEADER_SOURCE_OFFSET, HEADER_SOURCE_TOPIC, HEADER_STAGE
from schemas.enums import Channel, ChannelCallState, OrderStatus
from schemas.orders import Shipment, ShipmentLine
from schemas.sellable import ChannelSellable
from tests.unit.factories import at, make_availability, make_status_changed

STATUS_TOPIC = "dom.order-status.v1"
JOURNAL_TOPIC = "dom.channel-sync.v1"
AVAILABILITY_TOPIC = "dom.inventory.availability.v1"


@dataclass
class FakeMessage:
    _topic: str
    _key: bytes | None
    _value: bytes | None
    _offset: int = 7

    def topic(self) -> str:
        return self._topic

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def error(self) -> None:
        return None


@dataclass
class Report:
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class KeepingProducer:
    def __init__(self) -> None:
        self.codec = Codec()
        self.report = Report()
        self.records: list[ChannelCall] = []
        self.dead: list[tuple[bytes | None, bytes | None, dict[str, str]]] = []

    def send(self, record: ChannelCall) -> None:
        self.records.append(record)

    def send_raw(
        self, topic: str, key: bytes | None, value: bytes | None, *, headers: Any = None
    ) -> None:
        assert topic == "dom.dlq.v1"
        self.dead.append((key, value, {k: v.decode() for k, v in headers}))


class ScriptedChannel:
    """Answers each call with the next of ``answers`` (an exception is raised)."""

    channel = "shopify"

    def __init__(self, *answers: Done | Exception) -> None:
        self.answers: Iterator[Done | Exception] = iter(answers)
        self.made: list[str] = []

    async def perform(self, call: ChannelCall) -> Done:
        self.made.append(call.call_id)
        answer = next(self.answers)
        if isinstance(answer, Exception):
            raise answer
        return answer


def shipped_status(order_id: str = "WEB-9", n: int = 1) -> Any:
    shipment = Shipment(
        shipment_id=f"{order_id}-1-{n}",
        location_id="DC-EAST",
        lines=(ShipmentLine(line_id="111", sku="SKU-1", quantity=1),),
        kind="SHIP",  # type: ignore[arg-type]
        fulfillment_status="SHIPPED",  # type: ignore[arg-type]
        tracking_number=f"1Z{n}",
    )
    return make_status_changed(order_id, OrderStatus.SHIPPED, shipments=(shipment,))


def service_with(
    channel: ScriptedChannel, max_attempts: int = 3
) -> tuple[SyncService, KeepingProducer, list[float]]:
    producer = KeepingProducer()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    service = SyncService(
        Settings(),
        {"shopify": channel},
        producer,  # type: ignore[arg-type]
        backoff=Backoff(base_s=1.0, cap_s=8.0, max_attempts=max_attempts, draw=lambda: 0.5),
        sleep=sleep,
        now=lambda: at(60),
    )
    return service, producer, slept


def message_of(status: Any, producer: KeepingProducer, offset: int = 7) -> FakeMessage:
    return FakeMessage(
        STATUS_TOPIC, status.order_id.encode(), producer.codec.encode(status), offset
    )


def work(service: SyncService, *messages: FakeMessage) -> None:
    asyncio.run(service.work(messages))  # type: ignore[arg-type]


def test_a_shipped_status_is_told_once_and_recorded_done() -> None:
    channel = ScriptedChannel(Done("fulfillment 5 created", "5"))
    service, producer, _ = service_with(channel)
    message = message_of(shipped_status(), producer)

    work(service, message)
    work(service, message)  # redelivered: known done, the channel is not asked again

    assert channel.made == ["shopify:FULFIL:WEB-9-1-1"]
    [record] = producer.records
    assert (record.state, record.attempts, record.detail, record.channel_ref) == (
        ChannelCallState.DONE,
        1,
        "fulfillment 5 created",
        "5",
    )
    assert record.at == at(60) and producer.dead == []


def test_a_failing_channel_is_tried_again_with_backoff_and_recorded_retrying_once() -> None:
    channel = ScriptedChannel(TryAgain("503"), TryAgain("502"), Done("made"))
    service, producer, slept = service_with(channel)

    work(service, message_of(shipped_status(), producer))

    assert len(channel.made) == 3
    assert slept == [0.5, 1.0]  # half of 1 s, then of 2 s (the draw is 0.5)
    assert [(r.state, r.attempts, r.detail) for r in producer.records] == [
        (ChannelCallState.RETRYING, 1, "503"),
        (ChannelCallState.DONE, 3, "made"),
    ]


def test_throttling_waits_as_told_and_uses_no_attempt() -> None:
    throttled = [TryAgain("429", retry_after=2.0, throttled=True) for _ in range(4)]
    channel = ScriptedChannel(*throttled, Done("made"))
    service, producer, slept = service_with(channel, max_attempts=2)

    work(service, message_of(shipped_status(), producer))

    assert slept == [2.0, 2.0, 2.0, 2.0]
    assert producer.records[-1].state == ChannelCallState.DONE
    assert producer.dead == []


def test_exhausted_retries_leave_the_status_on_the_dead_letter_topic_with_the_reason() -> None:
    channel = ScriptedChannel(*(TryAgain(f"500 number {n}") for n in (1, 2, 3)))
    service, producer, _ = service_with(channel, max_attempts=3)
    message = message_of(shipped_status(), producer, offset=41)

    work(service, message)

    assert producer.records[-1].state == ChannelCallState.FAILED
    assert producer.records[-1].detail == "retries exhausted: 500 number 3"
    [(key, value, headers)] = producer.dead
    assert (key, value) == (message.key(), message.value())  # the status as it came
    assert headers[HEADER_ERROR] == "shopify:FULFIL:WEB-9-1-1: retries exhausted: 500 number 3"
    assert (headers[HEADER_STAGE], headers[HEADER_SOURCE_TOPIC]) == ("sync", STATUS_TOPIC)
    assert headers[HEADER_SOURCE_OFFSET] == "41"


def test_a_refused_call_is_not_retried() -> None:
    channel = ScriptedChannel(GiveUp("POST fulfillments.json answered 422: quantity"))
    service, producer, slept = service_with(channel)

    work(service, message_of(shipped_status(), producer))

    assert len(channel.made) == 1 and slept == []
    assert [(r.state, r.attempts) for r in producer.records] == [(ChannelCallState.FAILED, 1)]
    assert len(producer.dead) == 1


def test_an_undecodable_status_is_dead_lettered_and_the_rest_is_told() -> None:
    channel = ScriptedChannel(Done("made"))
    service, producer, _ = service_with(channel)

    work(
        service,
        FakeMessage(STATUS_TOPIC, b"WEB-1", b"\x00not avro"),
        message_of(shipped_status("WEB-2"), producer),
    )

    [(key, _, headers)] = producer.dead
    assert key == b"WEB-1" and headers[HEADER_ERROR].startswith("undecodable")
    assert channel.made == ["shopify:FULFIL:WEB-2-1-1"]


def test_an_operator_retry_makes_a_failed_call_again() -> None:
    channel = ScriptedChannel(GiveUp("401"), Done("made"))
    service, producer, _ = service_with(channel)
    work(service, message_of(shipped_status(), producer))
    failed = producer.records[-1]
    asked = failed.model_copy(
        update={"state": ChannelCallState.RETRY_REQUESTED, "requested_by": "ana"}
    )

    work(
        service,
        FakeMessage(JOURNAL_TOPIC, asked.call_id.encode(), producer.codec.encode(asked)),
    )

    assert channel.made == [failed.call_id, failed.call_id]
    assert producer.records[-1].state == ChannelCallState.DONE
    assert producer.records[-1].requested_by is None


def test_orders_of_a_channel_without_settings_are_counted_not_called() -> None:
    channel = ScriptedChannel()
    service, producer, _ = service_with(channel)

    work(service, message_of(shipped_status("MKT-113-1"), producer))

    assert channel.made == [] and producer.records == []
    assert service.counts["amazon.unconfigured"] == 1


def test_an_orders_calls_are_made_in_order_and_orders_side_by_side() -> None:
    order: list[str] = []

    class Slow(ScriptedChannel):
        async def perform(self, call: ChannelCall) -> Done:
            order.append(f"start {call.call_id}")
            await asyncio.sleep(0.01)
            order.append(f"end {call.call_id}")
            return Done("made")

    service, producer, _ = service_with(Slow())
    work(
        service,
        message_of(shipped_status("WEB-1", 1), producer),
        message_of(shipped_status("WEB-1", 2), producer),
        message_of(shipped_status("WEB-2", 1), producer),
    )

    one = [e for e in order if "WEB-1-" in e]
    assert one == [
        "start shopify:FULFIL:WEB-1-1-1",
        "end shopify:FULFIL:WEB-1-1-1",
        "start shopify:FULFIL:WEB-1-1-2",
        "end shopify:FULFIL:WEB-1-1-2",
    ]
    assert order.index("start shopify:FULFIL:WEB-2-1-1") < order.index(
        "end shopify:FULFIL:WEB-1-1-1"
    )


# ---- the web store's figures, from the skus' availability records --------------------------


class KeepingStock:
    """A shop that sells every sku and sets every figure it is given."""

    def __init__(self) -> None:
        self.held: dict[str, int] = {}
        self.pushed: list[dict[str, int]] = []

    async def learn(self, skus: Any) -> None:
        return None

    def batches(self, figures: dict[str, int]) -> list[dict[str, int]]:
        return [dict(figures)] if figures else []

    async def push(self, figures: dict[str, int]) -> Pushed:
        self.pushed.append(dict(figures))
        return Pushed(set=len(figures))


def availability_message(
    producer: KeepingProducer, sku: str, offset: int = 7, **figures: int
) -> FakeMessage:
    record = make_availability(
        sku,
        channels=tuple(
            ChannelSellable(channel=Channel(channel), available=n) for channel, n in figures.items()
        ),
    )
    return FakeMessage(AVAILABILITY_TOPIC, sku.encode(), producer.codec.encode(record), offset)


def test_the_web_figure_of_an_availability_record_is_pushed_when_it_is_new() -> None:
    stock = KeepingStock()
    producer = KeepingProducer()
    service = SyncService(Settings(), {}, producer, stock=stock)  # type: ignore[arg-type]
    assert AVAILABILITY_TOPIC in service.topics()

    # the batch's latest figure per sku; a record without the web store's says nothing
    work(
        service,
        availability_message(producer, "SKU-1", WEB=5, MARKETPLACE=3),
        availability_message(producer, "SKU-1", WEB=4, MARKETPLACE=3),
        availability_message(producer, "SKU-2", MARKETPLACE=1),
        availability_message(producer, "SKU-3"),  # an older worker's: no figures at all
    )
    assert stock.pushed == [{"SKU-1": 4}]

    # the marketplace's figure moved, the web store's did not: nothing to set in the shop
    work(service, availability_message(producer, "SKU-1", WEB=4, MARKETPLACE=1))
    assert stock.pushed == [{"SKU-1": 4}]
    work(service, availability_message(producer, "SKU-1", WEB=9, MARKETPLACE=1))
    assert stock.pushed == [{"SKU-1": 4}, {"SKU-1": 9}]


def test_an_undecodable_availability_record_is_dead_lettered_and_the_rest_pushed() -> None:
    stock = KeepingStock()
    producer = KeepingProducer()
    service = SyncService(Settings(), {}, producer, stock=stock)  # type: ignore[arg-type]
    bad = FakeMessage(AVAILABILITY_TOPIC, b"SKU-1", b"\xc3\x01junk", 3)
    work(service, bad, availability_message(producer, "SKU-2", WEB=2))
    assert stock.pushed == [{"SKU-2": 2}]
    [(key, value, headers)] = producer.dead
    assert (key, value) == (b"SKU-1", b"\xc3\x01junk")
    assert headers[HEADER_STAGE] == "sync" and headers[HEADER_ERROR].startswith("undecodable")
    assert headers[HEADER_SOURCE_TOPIC] == AVAILABILITY_TOPIC
