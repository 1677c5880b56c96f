"""A minimal Faust app for the tests of the runtime's fixes to Faust
(``tests/integration/test_faust_fixes.py``): a plain agent, no sequencer, no outbox, so a
record Faust loses stays lost and the fix under test is the only thing between the two.

It runs with every fix of :mod:`streams.runtime.faust_fixes`, less those named in
``PROBE_WITHOUT`` (names of :data:`tests.e2e.without_fix.UNDO`). Each record it processes is
written to ``probe.out`` as ``<its key>=<worker>:<partition>:<offset>``, all under one key, so
that the outputs of one input partition keep their order there; with ``PROBE_TABLE=1`` it is
also stored in a table. The agent acknowledges each record once done, by hand, as the stages'
batches do.

The races are stepped, not timed. With ``PROBE_HOLD=1`` the agent holds on to the first
record it gets, unacknowledged, until a rebalance begins (the flow stops), so every record
fetched with it is still queued, unprocessed, when the partitions are revoked; the held
record is acknowledged once the stream has met what was queued behind it. The other steps,
each set by its variable:

- ``PROBE_KEEP_QUEUES=1``: Faust does not clear its stream queues at the revocation, as
  happens to the records an in-flight fetch hands over just after the clear; the stream
  meets them while the flow is stopped and skips them.
- ``PROBE_STEP_FETCH=1``: a fetch is in flight across the rebalance and returns inside the
  window where Faust has resumed the partitions but not sought them.
- ``PROBE_PAUSE_FETCH=1``: a partition is paused between a fetch and its hand-over.
- ``PROBE_HOLD_WRITE_S``: the first table write is held on its way to the broker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import faust
from faust.transport.consumer import Consumer, ThreadDelegateConsumer
from faust.transport.producer import ProducerBuffer
from faust.types import TP

from config.settings import Settings
from streams.runtime import faust_fixes
from tests.e2e.without_fix import UNDO

log = logging.getLogger("probe")
HOLD_S = 60.0
"""How long the first record is held at most, waiting for a rebalance."""
HOLD = os.environ.get("PROBE_HOLD") == "1"
"""This worker holds its first record (the worker that is there before the rebalance)."""
holding = asyncio.Event()
"""Set once the first record is held."""


def _step_fetch_into_the_seek_window(app: faust.App) -> None:
    """Step a fetch across a rebalance into its window where Faust has resumed the stream
    partitions but not yet sought them. The fetch w1 sends while it holds its first record
    waits for records as long as the hold may last (Faust's own wait 1 s, and are sent again),
    so it is still in flight when the partitions move; the recovery's seek
    waits until it has returned. It returns the records of the partitions w1 keeps, fetched
    from their start (they have no commit); Faust hands them over while the flow is still
    stopped, so it drops them, and the fetch position has moved past them."""
    fetched = asyncio.Event()
    getmany = ThreadDelegateConsumer._getmany  # the aiokafka driver's
    perform_seek = Consumer.perform_seek

    async def stepped_getmany(self: Any, active_partitions: Any, timeout: float) -> Any:
        if not holding.is_set() or fetched.is_set():
            return await getmany(self, active_partitions, timeout)
        records = dict(await getmany(self, active_partitions, HOLD_S))
        # until it holds records of every partition w1 keeps (one fetch may bring only some)
        deadline = time.monotonic() + 10.0
        while records and _streams(self) - set(records) and time.monotonic() < deadline:
            for tp, batch in (await getmany(self, active_partitions, 0.5)).items():
                records[tp] = records.get(tp, []) + list(batch)
        if records:
            log.warning(
                "probe: a fetch in flight across the rebalance returned %s, generation %s",
                {tp.partition: len(batch) for tp, batch in records.items()},
                app.consumer_generation_id,
            )
            fetched.set()
        return records

    async def stepped_seek(self: Any) -> None:
        if holding.is_set() and not fetched.is_set():
            await asyncio.wait_for(fetched.wait(), HOLD_S)
        await perform_seek(self)

    ThreadDelegateConsumer._getmany = stepped_getmany  # type: ignore[method-assign]
    Consumer.perform_seek = stepped_seek  # type: ignore[method-assign]


def _streams(consumer: Any) -> set[Any]:
    """The stream partitions assigned to this worker (no changelog, no assignor topic)."""
    return {tp for tp in consumer.assignment() if tp.topic == settings.topic("probe.in")}


def _pause_between_fetch_and_hand_over(app: faust.App) -> None:
    """Pause a stream partition between a fetch and its hand-over, with the flow running, as
    Faust's table recovery pauses the stream partitions while the flow reads the changelogs:
    the first fetch that brings records has its first partition paused before Faust looks
    at them, and resumed a second later. Faust skips the records of a partition that is not
    active, and the fetch position has moved past them."""
    paused: list[Any] = []
    getmany = ThreadDelegateConsumer._getmany  # the aiokafka driver's

    async def stepped_getmany(self: Any, active_partitions: Any, timeout: float) -> Any:
        records = await getmany(self, active_partitions, timeout)
        if records and not paused:
            first = next(iter(records))
            tp = TP(first.topic, first.partition)  # Faust's resume takes its own type only
            paused.append(tp)
            self.pause_partitions([tp])
            asyncio.get_running_loop().call_later(1.0, self.resume_partitions, [tp])
            log.warning(
                "probe: paused %s[%s] between a fetch of %d records and their hand-over",
                tp.topic,
                tp.partition,
                len(records[first]),
            )
        return records

    ThreadDelegateConsumer._getmany = stepped_getmany  # type: ignore[method-assign]


def _hold_the_first_table_write(seconds: float) -> None:
    """Hold the first table write for ``seconds`` on its way to the broker, as a full
    producer or a changelog partition without a leader holds it: the table writes after it
    wait in Faust's producer buffer meanwhile, while the agent goes on and its records are
    acknowledged."""
    send = ProducerBuffer._send_pending
    held: list[bool] = []

    async def stepped_send(self: Any, fut: Any) -> None:
        if not held and fut.message.channel.get_topic_name().endswith("-changelog"):
            held.append(True)
            log.warning("probe: holding a table write for %.0f s", seconds)
            await asyncio.sleep(seconds)
            log.warning("probe: the held table write goes on")
        await send(self, fut)

    ProducerBuffer._send_pending = stepped_send  # type: ignore[method-assign]


settings = Settings()
faust_fixes.apply(fetch_max_wait_ms=settings.fetch_max_wait_ms)
for fix in filter(None, os.environ.get("PROBE_WITHOUT", "").split(",")):
    UNDO[fix]()
app = faust.App(
    os.environ["PROBE_APP_ID"],
    broker=settings.faust_broker_url(),
    store="memory://",
    datadir=os.environ["PROBE_DATA_DIR"],
    broker_session_timeout=10,
    broker_heartbeat_interval=1,
    topic_partitions=int(os.environ.get("PROBE_PARTITIONS", "8")),
)
if os.environ.get("PROBE_KEEP_QUEUES") == "1":
    app.flow_control.clear = lambda: None  # type: ignore[method-assign]
if os.environ.get("PROBE_STEP_FETCH") == "1":
    _step_fetch_into_the_seek_window(app)
if os.environ.get("PROBE_PAUSE_FETCH") == "1":
    _pause_between_fetch_and_hand_over(app)
if os.environ.get("PROBE_HOLD_WRITE_S"):
    _hold_the_first_table_write(float(os.environ["PROBE_HOLD_WRITE_S"]))
seen: Any = None
"""With ``PROBE_TABLE=1``, where each record was processed, by its key: the state a worker
must not lose. (Without a table, a rebalance takes Faust's shorter path: no recovery.)"""
if os.environ.get("PROBE_TABLE") == "1":
    seen = app.Table("seen", key_type=bytes, value_type=bytes)
    seen.key_serializer = seen.value_serializer = "raw"  # before first use, as in raw.py
source = app.topic(settings.topic("probe.in"), key_serializer="raw", value_serializer="raw")
sink = app.topic(settings.topic("probe.out"), key_serializer="raw", value_serializer="raw")
WORKER = os.environ["PROBE_WORKER"]


@app.agent(source)
async def probe(stream: Any) -> None:
    # Acked by hand once done, as the stages' batches are (streams/runtime/batches.py); the
    # stream still acks what it skips.
    stream.enable_acks = False
    held = not HOLD
    async for event in stream.events():
        message = event.message
        where = f"={WORKER}:{message.partition}:{message.offset}".encode()
        if seen is not None:
            seen[message.key] = where
        await sink.send(key=b"probe", value=message.key + where)  # one partition: in order
        if held:
            await stream.ack(event)
            continue
        held = True
        log.warning("probe: holding the first record %s[%s]", message.tp, message.offset)
        holding.set()
        await _until_the_flow_stops()
        log.warning("probe: the flow stopped, %d records queued", stream.channel.queue.qsize())
        # The revocation waits for this ack before it commits; the stream meanwhile meets
        # what is queued behind it.
        app.add_future(_ack_once_the_queue_is_met(stream, event))


async def _ack_once_the_queue_is_met(stream: Any, event: Any) -> None:
    while stream.channel.queue.qsize():
        await asyncio.sleep(0.01)
    await stream.ack(event)


async def _until_the_flow_stops() -> None:
    deadline = time.monotonic() + HOLD_S
    while app.flow_control.is_active() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
