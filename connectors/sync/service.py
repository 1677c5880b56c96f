"""The channel sync process: order statuses in, calls to the channels out, each one recorded.

It is a consumer group of its own (``<prefix>dom-sync``) reading ``dom.order-status.v1``, its
own record, ``dom.channel-sync.v1`` (for the retries operators ask for), and, with a shop to
push stock to, ``dom.inventory.availability.v1``, whose records carry what the web store may
sell of each sku (``Availability.channels``; `connectors.sync.stock`). A batch of
messages is worked order by order (an order's calls in their order, several orders at once),
then its records are confirmed by the broker, then its offsets are committed: a crash
re-reads the batch, and each channel's checks (`connectors.sync.shopify`) keep a call from
being made twice.

A call that fails is tried again with backoff (`connectors.sync.backoff`), throttling aside,
up to ``DOM_SYNC_MAX_ATTEMPTS``. A call that cannot be made (the channel refused it, or
retries ran out) is recorded ``FAILED`` and the status that asked for it goes to
``dom.dlq.v1`` with the reason, stage ``sync``. The pipeline goes on either way. So do stock
figures: a batch's latest figure per sku is pushed (several skus a call) when it differs from
the last one the service took for that sku (an availability record comes whenever any of the
sku's figures moved, the web store's or not); one that cannot be pushed goes to ``dom.dlq.v1``
with the reason, its record with it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from confluent_kafka import Consumer, Message

from config.settings import Settings
from connectors.producer import ContractProducer
from connectors.sync.backoff import Backoff
from connectors.sync.calls import Done, calls_for, reached
from connectors.sync.http import ChannelError, GiveUp, TryAgain
from connectors.sync.stock import ShopifyStock
from schemas.channels import ChannelCall
from schemas.codec import DecodeError
from schemas.dlq import dead_letter
from schemas.enums import Channel, ChannelCallState
from schemas.models import Availability
from schemas.orders import OrderStatusChanged
from schemas.topics import AVAILABILITY, CHANNEL_SYNC, DLQ, ORDER_STATUS

log = logging.getLogger(__name__)

STAGE = "sync"
BATCH = 500
POLL_S = 0.5
REMEMBERED_DONE = 100_000
"""Calls known done, kept to skip a repeat without asking the channel (oldest forgotten)."""
REMEMBERED_FIGURES = 200_000
"""Skus whose last web figure taken is kept, to skip the same figure again (oldest forgotten:
such a sku's next figure is pushed even when the same, which sets the same level again)."""


class ChannelApi(Protocol):
    channel: str

    async def perform(self, call: ChannelCall) -> Done: ...


Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")
STOCK_CHANNEL = Channel.WEB  # whose figures the shop gets


class GaveUp(Exception):
    """A call given up after ``attempts``: refused for good, or out of retries."""

    def __init__(self, detail: str, attempts: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.attempts = attempts


class SyncService:
    """Works the messages it is given; `run` feeds it from Kafka."""

    def __init__(
        self,
        settings: Settings,
        channels: Mapping[str, ChannelApi],
        producer: ContractProducer,
        *,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        stock: ShopifyStock | None = None,
    ) -> None:
        self.settings = settings
        self.channels = channels
        self.stock = stock
        # figures of the web channel: pushed, refused (by the shop), held (sku not sold
        # there yet), failed (the call gave up); and the calls made
        self.stock_counts: Counter[str] = Counter()
        self.producer = producer
        self.backoff = backoff or Backoff(
            settings.sync_backoff_base_s, settings.sync_backoff_cap_s, settings.sync_max_attempts
        )
        self.sleep = sleep
        self.now = now
        self.counts: Counter[str] = Counter()  # "<channel>.<state>", and "<channel>.unconfigured"
        self._done: OrderedDict[str, None] = OrderedDict()
        self._figures: OrderedDict[str, int] = OrderedDict()  # sku -> last web figure taken
        self._slots = asyncio.Semaphore(settings.sync_concurrency)
        self._status_topic = settings.topic(ORDER_STATUS.name)
        self._journal_topic = settings.topic(CHANNEL_SYNC.name)
        self.stock_topic = settings.topic(AVAILABILITY.name)

    def topics(self) -> list[str]:
        """What the service reads."""
        own = [self._status_topic, self._journal_topic]
        return own + ([self.stock_topic] if self.stock is not None else [])

    async def work(self, messages: Iterable[Message]) -> None:
        """Every message, an order's in order, several orders at once, and the batch's stock
        figures; returns when all are done (recorded, pushed or dead-lettered)."""
        by_key: dict[bytes | None, list[Message]] = {}
        figures: list[Message] = []
        for message in messages:
            if message.error() is not None:
                continue
            if message.topic() == self.stock_topic:
                figures.append(message)
            else:
                by_key.setdefault(message.key(), []).append(message)
        await asyncio.gather(
            *(self._work_in_order(group) for group in by_key.values()),
            self._push_stock(figures),
        )

    async def _work_in_order(self, messages: list[Message]) -> None:
        async with self._slots:
            for message in messages:
                for call in self._calls_of(message):
                    await self.make(call, message)

    def _calls_of(self, message: Message) -> list[ChannelCall]:
        try:
            if message.topic() == self._journal_topic:
                return self._retries_asked(message)
            status = self.producer.codec.decode_as(message.value() or b"", OrderStatusChanged)
        except DecodeError as exc:
            self._dead_letter(message, f"undecodable: {exc.reason}")
            return []
        calls = [c for c in calls_for(status) if c.call_id not in self._done]
        for call in calls:
            if call.channel not in self.channels:
                self.counts[f"{call.channel}.unconfigured"] += 1
        return [c for c in calls if c.channel in self.channels]

    def _retries_asked(self, message: Message) -> list[ChannelCall]:
        if message.value() is None:
            return []  # a tombstone: the record of a call was deleted
        call = self.producer.codec.decode_as(message.value() or b"", ChannelCall)
        if call.state == ChannelCallState.DONE:
            self._remember(call.call_id)  # done by this process or another, before or now
        if call.state != ChannelCallState.RETRY_REQUESTED or call.channel not in self.channels:
            return []
        self._done.pop(call.call_id, None)
        return [call]

    async def make(self, call: ChannelCall, source: Message) -> None:
        """Make ``call`` until done or given up, recording where it stands."""
        api = self.channels[call.channel]

        def retrying(detail: str) -> None:
            self._record(call, ChannelCallState.RETRYING, 1, detail)

        try:
            done, attempts = await self.retried(lambda: api.perform(call), retrying)
        except GaveUp as exc:
            self._failed(call, source, exc.attempts, exc.detail)
            return
        self._record(call, ChannelCallState.DONE, attempts, done.detail, done.channel_ref)
        self._remember(call.call_id)

    async def retried(
        self, attempt: Callable[[], Awaitable[T]], first_failure: Callable[[str], None]
    ) -> tuple[T, int]:
        """``attempt`` until it works (its result and the attempts it took), with backoff on
        `TryAgain` (``first_failure`` is told of the first); `GaveUp` when refused for good,
        out of attempts, or out of time."""
        started, attempts, failures = time.monotonic(), 0, 0
        while True:
            attempts += 1
            try:
                return await attempt(), attempts
            except TryAgain as exc:
                failures += 0 if exc.throttled else 1
                waited = time.monotonic() - started
                if self.backoff.exhausted(failures) or waited > self.settings.sync_max_wait_s:
                    raise GaveUp(f"retries exhausted: {exc.detail}", attempts) from exc
                if attempts == 1:
                    first_failure(exc.detail)
                await self.sleep(self.backoff.delay(max(failures, 1), exc.retry_after))
            except GiveUp as exc:
                raise GaveUp(exc.detail, attempts) from exc

    async def idle(self) -> None:
        """Nothing came: held figures go out if their skus' products were read meanwhile."""
        await self._push_stock([])

    async def _push_stock(self, messages: list[Message]) -> None:
        """The web channel's latest figure per sku in ``messages``, set in the shop when it is
        new (and the held ones whose sku the shop sells by now)."""
        if self.stock is None or not (messages or self.stock.held):
            return
        latest: dict[str, tuple[int, Message]] = {}
        for message in messages:
            figure = self._figure_of(message)
            if figure is not None:
                latest[figure[0]] = (figure[1], message)
        latest = {sku: taken for sku, taken in latest.items() if self._new_figure(sku, taken[0])}
        stock = self.stock
        try:
            await self.retried(lambda: stock.learn(latest), self._stock_retrying)
        except GaveUp as exc:
            self._stock_failed([m for _, m in latest.values()], f"products not read: {exc.detail}")
            return
        batches = stock.batches({sku: n for sku, (n, _) in latest.items()})
        self.stock_counts["held"] = len(stock.held)
        for batch in batches:
            await self._push_batch(batch, latest)

    async def _push_batch(
        self, batch: dict[str, int], sources: Mapping[str, tuple[int, Message]]
    ) -> None:
        stock = self.stock
        assert stock is not None
        try:
            pushed, attempts = await self.retried(lambda: stock.push(batch), self._stock_retrying)
        except GaveUp as exc:
            held = [sources[sku][1] for sku in batch if sku in sources]
            self._stock_failed(held, exc.detail)
            return
        self.stock_counts["calls"] += attempts
        self.stock_counts["pushed"] += pushed.set
        for sku, reason in pushed.refused.items():
            self.stock_counts["refused"] += 1
            if sku in sources:
                self._dead_letter(sources[sku][1], f"shopify refused the figure of {sku}: {reason}")

    def _figure_of(self, message: Message) -> tuple[str, int] | None:
        """The sku and what the web store may sell of it, if the record says (a worker of a
        release before figures rode on availability, or one that does not publish the web
        store's, leaves ``channels`` without it). Read as Avro fields, without a model: the
        service takes every sku's availability, written by the workers, for one figure of it,
        and validating each location's figures too was work for nothing."""
        if message.value() is None:
            return None
        try:
            record = self.producer.codec.decode_fields(message.value() or b"", Availability)
        except DecodeError as exc:
            self._dead_letter(message, f"undecodable: {exc.reason}")
            return None
        for figure in record["channels"]:
            if figure["channel"] == STOCK_CHANNEL.value:
                return str(record["sku"]), int(figure["available"])
        return None

    def _new_figure(self, sku: str, available: int) -> bool:
        """Whether ``available`` differs from the sku's last figure taken; it is the last now."""
        if self._figures.get(sku) == available:
            self._figures.move_to_end(sku)
            return False
        self._figures[sku] = available
        self._figures.move_to_end(sku)
        while len(self._figures) > REMEMBERED_FIGURES:
            self._figures.popitem(last=False)
        return True

    def _stock_retrying(self, detail: str) -> None:
        self.stock_counts["retried"] += 1
        log.warning("stock push to the shop failed, trying again: %s", detail)

    def _stock_failed(self, sources: list[Message], detail: str) -> None:
        log.error("stock figures of %d skus not pushed: %s", len(sources), detail)
        self.stock_counts["failed"] += len(sources)
        for message in sources:
            self._dead_letter(message, f"stock push: {detail}")

    def _failed(self, call: ChannelCall, source: Message, attempts: int, detail: str) -> None:
        log.error("%s failed after %d attempts: %s", call.call_id, attempts, detail)
        self._record(call, ChannelCallState.FAILED, attempts, detail)
        self._dead_letter(source, f"{call.call_id}: {detail}")

    def _record(
        self,
        call: ChannelCall,
        state: ChannelCallState,
        attempts: int,
        detail: str,
        channel_ref: str | None = None,
    ) -> None:
        self.counts[f"{call.channel}.{state.value}"] += 1
        record = reached(
            call, state, self.now(), attempts=attempts, detail=detail, channel_ref=channel_ref
        )
        self.producer.send(record)

    def _dead_letter(self, message: Message, error: str) -> None:
        letter = dead_letter(
            message.key(),
            message.value(),
            error=error,
            stage=STAGE,
            source_topic=message.topic() or "",
            partition=message.partition() or 0,
            offset=message.offset() or 0,
        )
        self.counts["dead_letters"] += 1
        self.producer.send_raw(DLQ.name, letter.key, letter.value, headers=letter.headers)

    def _remember(self, call_id: str) -> None:
        self._done[call_id] = None
        self._done.move_to_end(call_id)
        while len(self._done) > REMEMBERED_DONE:
            self._done.popitem(last=False)


def consumer_config(settings: Settings) -> dict[str, object]:
    return settings.librdkafka_config(
        **{
            "group.id": f"{settings.topic_prefix}dom-sync",
            "enable.auto.commit": False,
            "auto.offset.reset": settings.sync_start,
            "isolation.level": "read_committed",
            # A batch may wait on a throttled channel for sync_max_wait_s before it polls again.
            "max.poll.interval.ms": int((settings.sync_max_wait_s + 300) * 1000),
        }
    )


async def run(service: SyncService, consumer: Consumer, stop: asyncio.Event) -> None:
    """Poll, work, confirm, commit, until ``stop``; an unconfirmed record stops the process
    before its offsets are committed (a restart works the batch again)."""
    loop = asyncio.get_running_loop()
    consumer.subscribe(service.topics())
    while not stop.is_set():
        messages = await loop.run_in_executor(None, consumer.consume, BATCH, POLL_S)
        if not messages:
            await service.idle()
            continue
        await service.work(messages)
        failed_before = service.producer.report.failed
        report = await loop.run_in_executor(None, service.producer.flush, 30.0)
        if report.failed > failed_before:
            raise ChannelError(f"records not confirmed by the broker: {report.errors[-1:]}")
        await loop.run_in_executor(None, _commit, consumer)


def _commit(consumer: Consumer) -> None:
    try:
        consumer.commit(asynchronous=False)
    except Exception as exc:  # a rebalance took the partitions: the next owner re-reads them
        log.warning("offsets not committed: %s", exc)
