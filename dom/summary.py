"""The live terminal summary of ``make run``: what the pipeline is doing, second by second.

:class:`SummaryState` is pure aggregation over decoded records (orders, statuses, commands,
availability, dead letters), each with its timestamp, so it can be unit-tested without Kafka.
:func:`render` turns it into a rich renderable; :func:`run_summary` tails the topics with
confluent-kafka, outside any consumer group, and redraws once a second. Above the panels it
prints what is wrong, in red: a stage of a worker failing (from the workers' ``/health/``,
:mod:`dom.worker_health`), or orders coming in while no routing outcome comes out.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from confluent_kafka import Consumer, KafkaException, TopicPartition

from config.settings import Settings
from schemas import topics as registry
from schemas.enums import ROUTING_OUTCOMES
from schemas.models import (
    Availability,
    ChannelCall,
    FulfillmentCommand,
    Message,
    OrderCancelled,
    OrderPlaced,
    OrderStatusChanged,
    PackagingCommand,
)

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

SUMMARY_TOPICS = (
    registry.ORDER_STATUS,
    registry.ORDERS,
    registry.FULFILLMENT_COMMANDS,
    registry.PACKAGING_COMMANDS,
    registry.AVAILABILITY,
    registry.CHANNEL_SYNC,
    registry.DLQ,
)
CHANNELS = ("WEB", "MARKETPLACE", "POS", "WHOLESALE", "CALL_CENTER")
STATUS_ORDER = (
    "RECEIVED", "ALLOCATED", "PARTIALLY_ALLOCATED", "BACKORDERED", "ON_HOLD", "REJECTED",
    "CANCELLED", "SHIPPED", "COMPLETED", "RETURN_AUTHORIZED", "RETURNED",
)  # fmt: skip
_T = TypeVar("_T")
TRACKED_ORDERS = 200_000  # per-order memory (placed time, rules counted) is bounded
STALL_AFTER = 60.0
"""Seconds of orders with no routing outcome at all before the summary calls routing stalled."""


@dataclass(frozen=True, slots=True)
class DeadLetterNote:
    """Why one message went to the dead-letter topic, and where it came from."""

    at: float
    stage: str
    source_topic: str
    error: str


class SummaryState:
    """Counters and recent windows over the pipeline's topics; times are epoch seconds."""

    def __init__(self, window: float = 10.0, low_stock_recent: int = 500) -> None:
        self.window = window
        self.first_at: float | None = None
        self.orders: Counter[str] = Counter()
        self.cancels = 0
        self.outcomes: Counter[str] = Counter()  # the first routing outcome of each order
        self.statuses: Counter[str] = Counter()  # every status change
        self.rules: Counter[str] = Counter()
        self.fulfillment_kinds: Counter[str] = Counter()
        self.packaging: Counter[str] = Counter()
        self.routed_with_shipments = 0
        self.split = 0
        self.availability_updates = 0
        self.dead_letters = 0
        self.dead_letter_stages: Counter[str] = Counter()
        self.last_dead_letters: deque[DeadLetterNote] = deque(maxlen=5)
        self.latencies_ms: deque[float] = deque(maxlen=2000)
        self._recent_orders: deque[tuple[float, str]] = deque()
        self._placed_at: OrderedDict[str, float] = OrderedDict()
        self._routed: OrderedDict[str, set[str]] = OrderedDict()  # order -> rules counted
        self._stock: OrderedDict[str, Availability] = OrderedDict()
        self._low_stock_recent = low_stock_recent
        self.channel_calls: Counter[str] = Counter()  # "<channel> <what>", once per call
        self._calls_seen: OrderedDict[str, set[str]] = OrderedDict()  # call -> states counted
        self.stock_pushes: dict[str, int] = {}  # the sync's stock push counts, from its /stats
        self.orders_since_outcome = 0  # orders seen since the last routing outcome
        self.waiting_since: float | None = None  # the first of them

    # ---- feeding -----------------------------------------------------------------------------

    def add(self, record: Message, at: float) -> None:
        """Any decoded record of the summary's topics; others are ignored."""
        self.first_at = at if self.first_at is None else min(self.first_at, at)
        if isinstance(record, OrderPlaced):
            self._add_order(record, at)
        elif isinstance(record, OrderCancelled):
            self.cancels += 1
        elif isinstance(record, OrderStatusChanged):
            self._add_status(record, at)
        elif isinstance(record, FulfillmentCommand):
            self.fulfillment_kinds[record.kind.value] += 1
        elif isinstance(record, PackagingCommand):
            self.packaging[record.packaging] += 1
        elif isinstance(record, ChannelCall):
            self._add_call(record)
        elif isinstance(record, Availability):
            self.availability_updates += 1
            self._stock.pop(record.sku, None)
            self._stock[record.sku] = record
            while len(self._stock) > self._low_stock_recent:
                self._stock.popitem(last=False)

    def add_dead_letter(self, *, stage: str, source_topic: str, error: str, at: float) -> None:
        self.dead_letters += 1
        self.dead_letter_stages[stage or "?"] += 1
        self.last_dead_letters.append(DeadLetterNote(at, stage, source_topic, error))

    def _add_call(self, call: ChannelCall) -> None:
        """What the channel sync told the channels: each call counted once per state it
        reached (a repeat after a restart, or an operator's retry, counts no second time)."""
        states = self._calls_seen.get(call.call_id)
        if states is None:
            states = set()
            _remember(self._calls_seen, call.call_id, states)
        if call.state.value in states:
            return
        states.add(call.state.value)
        what = {"DONE": call.kind.value, "RETRYING": "retried", "FAILED": "failed"}.get(
            call.state.value
        )
        if what is None:
            return
        self.channel_calls[f"{call.channel} {what}"] += 1
        if what == "FULFIL" and call.tracking_number:
            self.channel_calls[f"{call.channel} tracking"] += 1

    def _add_order(self, order: OrderPlaced, at: float) -> None:
        channel = order.channel.value
        self.orders[channel] += 1
        self._recent_orders.append((at, channel))
        _remember(self._placed_at, order.order_id, at)
        if not self.orders_since_outcome:
            self.waiting_since = at
        self.orders_since_outcome += 1

    def _add_status(self, status: OrderStatusChanged, at: float) -> None:
        value = status.status.value
        self.statuses[value] += 1
        if value not in ROUTING_OUTCOMES or status.action_id is not None:
            return  # an action's answer repeats the order's status; it decides nothing
        counted = self._routed.get(status.order_id)
        self.orders_since_outcome, self.waiting_since = 0, None
        if counted is None:  # the order's first routing outcome
            counted = set()
            _remember(self._routed, status.order_id, counted)
            self.outcomes[value] += 1
            if status.shipments:
                self.routed_with_shipments += 1
                self.split += len(status.shipments) > 1
            placed = self._placed_at.get(status.order_id)
            if placed is not None:
                self.latencies_ms.append(max(0.0, (at - placed) * 1000))
        for rule_id in status.rules_fired:  # a re-route may fire more rules; count each once
            if rule_id not in counted:
                counted.add(rule_id)
                self.rules[rule_id] += 1

    # ---- views -------------------------------------------------------------------------------

    def channel_rates(self, now: float) -> dict[str, float]:
        """Orders per second by channel over the last ``window`` seconds (shorter at start)."""
        while self._recent_orders and self._recent_orders[0][0] < now - self.window:
            self._recent_orders.popleft()
        span = self.window
        if self.first_at is not None:
            span = min(self.window, max(1.0, now - self.first_at))
        counts = Counter(channel for _, channel in self._recent_orders)
        return {channel: counts[channel] / span for channel in CHANNELS}

    @property
    def split_rate(self) -> float | None:
        """Share of routed orders (with at least one shipment) that needed more than one."""
        if not self.routed_with_shipments:
            return None
        return self.split / self.routed_with_shipments

    def stalled(self, now: float) -> str | None:
        """Why routing looks stalled: orders keep coming and no outcome came for a minute."""
        if self.waiting_since is None or now - self.waiting_since < STALL_AFTER:
            return None
        return (
            f"ROUTING STALLED: no routing outcome for {now - self.waiting_since:.0f}s while "
            f"{self.orders_since_outcome} orders came in"
        )

    def top_rules(self, n: int = 8) -> list[tuple[str, int]]:
        return sorted(self.rules.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    def low_stock(self, n: int = 8) -> list[Availability]:
        """The lowest total available among recently updated SKUs (newest first on ties)."""
        recent = list(self._stock.values())[::-1]
        return sorted(recent, key=lambda a: a.total_available)[:n]

    def latency_percentiles(self) -> tuple[float, float] | None:
        """p50 and p95 of placed-to-outcome time (ms), over recent orders."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return _pct(ordered, 0.5), _pct(ordered, 0.95)


def _remember(table: OrderedDict[str, Any], key: str, value: Any) -> None:
    table[key] = value
    if len(table) > TRACKED_ORDERS:
        table.popitem(last=False)


def _pct(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---- rendering ------------------------------------------------------------------------------


def render(
    state: SummaryState,
    urls: Sequence[str],
    now: float,
    health: Sequence[tuple[str, str]] = (),
) -> RenderableType:
    """The whole screen: what is wrong (``health``: (style, text) lines from the workers, and
    a stall of routing), then one panel per concern, laid out in a grid."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(expand=True, padding=(0, 1))
    grid.add_column(ratio=1)
    grid.add_column(ratio=1)
    grid.add_column(ratio=1)
    grid.add_row(_orders_panel(state, now), _outcomes_panel(state), _routing_panel(state))
    grid.add_row(_rules_panel(state), _stock_panel(state), _dlq_panel(state))
    grid.add_row(_channels_panel(state), "", "")
    alerts = list(health)
    stalled = state.stalled(now)
    if stalled is not None:
        alerts.insert(0, ("bold red", stalled))
    lines = [Text(text, style=style) for style, text in alerts]
    return Group(_header(state, now), *lines, grid, _endpoints(urls))


def _header(state: SummaryState, now: float) -> Any:
    from rich.text import Text

    seen = 0 if state.first_at is None else max(0, int(now - state.first_at))
    text = Text("DOM live summary", style="bold")
    text.append(f"   {seen // 60}m{seen % 60:02d}s of traffic", style="dim")
    text.append(f"   {state.availability_updates} availability updates", style="dim")
    return text


def _panel(title: str, rows: Iterable[tuple[str, str]], empty: str = "nothing yet") -> Any:
    from rich.panel import Panel
    from rich.table import Table

    table = Table.grid(padding=(0, 2), expand=True)
    table.add_column(overflow="ellipsis", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    rows = list(rows)
    for label, value in rows or [(f"[dim]{empty}[/]", "")]:
        table.add_row(label, value)
    return Panel(table, title=f"[bold]{title}[/]", title_align="left")


def _orders_panel(state: SummaryState, now: float) -> Any:
    rates = state.channel_rates(now)
    rows = [(ch, f"{rates[ch]:5.1f}/s {state.orders[ch]:>7}") for ch in CHANNELS]
    total = sum(state.orders.values())
    rows.append(("[bold]all[/]", f"[bold]{sum(rates.values()):5.1f}/s {total:>7}[/]"))
    rows.append(("cancellations sent", f"{state.cancels}"))
    return _panel(f"Orders by channel (last {state.window:.0f}s)", rows)


def _outcomes_panel(state: SummaryState) -> Any:
    routed = sum(state.outcomes.values())
    rows = []
    for status in STATUS_ORDER:
        events = state.statuses[status]
        if not events:
            continue
        if status in ROUTING_OUTCOMES:
            share = state.outcomes[status] / routed if routed else 0.0
            rows.append((status, f"{state.outcomes[status]:>7} {share:6.1%}"))
        else:
            rows.append((f"[dim]{status}[/]", f"{events:>7}       "))
    return _panel("Outcomes (orders) / later statuses", rows)


def _routing_panel(state: SummaryState) -> Any:
    split = state.split_rate
    rows = [("split rate (>1 shipment)", "-" if split is None else f"{split:.1%}")]
    latency = state.latency_percentiles()
    if latency is not None:
        rows.append(("placed->outcome p50 / p95", f"{latency[0]:.0f} / {latency[1]:.0f} ms"))
    rows += [(f"command {k}", f"{v}") for k, v in state.fulfillment_kinds.most_common()]
    rows += [(f"packaging {k}", f"{v}") for k, v in state.packaging.most_common(4)]
    return _panel("Routing and commands", rows)


def _rules_panel(state: SummaryState) -> Any:
    return _panel("Rules fired (orders)", [(r, f"{n}") for r, n in state.top_rules()])


def _stock_panel(state: SummaryState) -> Any:
    rows = []
    for a in state.low_stock():
        where = sum(1 for x in a.locations if x.available > 0)
        style = "red" if a.total_available == 0 else "yellow"
        rows.append((a.sku, f"[{style}]{a.total_available:>5}[/] at {where:>2} loc"))
    return _panel("Low stock (recently updated SKUs)", rows)


def _dlq_panel(state: SummaryState) -> Any:
    rows = [
        ("dead letters", f"[{'red' if state.dead_letters else 'green'}]{state.dead_letters}[/]")
    ]
    for note in reversed(state.last_dead_letters):
        rows.append((f"[dim]{note.stage}[/] {note.error}", ""))
    return _panel("Dead letters (dom.dlq.v1)", rows)


CALL_LABELS = (
    ("shopify FULFIL", "Shopify: fulfillments reported"),
    ("shopify tracking", "Shopify: tracking numbers sent"),
    ("shopify CANCEL", "Shopify: cancels reported"),
    ("amazon FULFIL", "Marketplace: shipments confirmed"),
    ("amazon CANCEL", "Marketplace: cancels reported"),
)


def _channels_panel(state: SummaryState) -> Any:
    calls = state.channel_calls
    rows = [(label, f"{calls[key]}") for key, label in CALL_LABELS if calls[key]]
    stock = state.stock_pushes
    if stock:
        rows.append(("Shopify: stock figures set", f"{stock.get('pushed', 0)}"))
        rows.append(("  in calls (batched)", f"{stock.get('calls', 0)}"))
        if stock.get("refused") or stock.get("failed"):
            bad = stock.get("refused", 0) + stock.get("failed", 0)
            rows.append(("  refused or failed (dom.dlq.v1)", f"[red]{bad}[/]"))
    retried = sum(n for key, n in calls.items() if key.endswith(" retried"))
    retried += stock.get("retried", 0)
    failed = sum(n for key, n in calls.items() if key.endswith(" failed"))
    if retried or failed:
        rows.append(("calls retried (throttled or failing)", f"[yellow]{retried}[/]"))
        rows.append(
            ("calls failed (dom sync retry)", f"[{'red' if failed else 'green'}]{failed}[/]")
        )
    return _panel("Channels told (dom sync)", rows)


def _endpoints(urls: Sequence[str]) -> Any:
    from rich.text import Text

    text = Text("HTTP  ", style="bold")
    text.append("   ".join(urls) if urls else "(none)", style="cyan")
    text.append("   Ctrl-C stops everything", style="dim")
    return text


# ---- the live loop --------------------------------------------------------------------------


def tail_consumer(settings: Settings, names: Sequence[str], since_ms: int | None) -> Consumer:
    """A consumer outside any group over registry topics (unprefixed names), positioned at
    their current end, or at the first offsets at or after ``since_ms``."""
    consumer = Consumer(
        settings.librdkafka_config(
            **{
                "group.id": f"dom-tail-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "latest",
            }
        )
    )
    parts: list[TopicPartition] = []
    for name in map(settings.topic, names):
        metadata = consumer.list_topics(name, timeout=30).topics[name]
        if metadata.error is not None:
            raise RuntimeError(f"topic {name}: {metadata.error}; run `dom topics create`")
        parts += [TopicPartition(name, p, since_ms or 0) for p in metadata.partitions]
    if since_ms is None:
        for part in parts:
            part.offset = _retrying(partial(consumer.get_watermark_offsets, part, timeout=10))[1]
    else:
        # -1 (no message at or after the time yet) means the end, which is what we want.
        parts = _retrying(partial(_offsets_for_times, consumer, parts))
    consumer.assign(parts)
    return consumer


def _offsets_for_times(consumer: Consumer, parts: list[TopicPartition]) -> list[TopicPartition]:
    found: list[TopicPartition] = consumer.offsets_for_times(parts, timeout=10)
    failed = [p.error for p in found if p.error is not None]
    if failed:
        raise KafkaException(failed[0])
    return found


def _retrying(call: Callable[[], _T], timeout: float = 60.0) -> _T:
    """``call``, again while the cluster settles (fresh topics have no leader for a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except KafkaException:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def feed(state: SummaryState, settings: Settings, codec: Any, message: Any) -> None:
    """One consumed message into the state: decoded, or as a dead letter from its headers."""
    if message.error() is not None or message.value() is None:
        return
    at = message.timestamp()[1] / 1000 if message.timestamp()[1] > 0 else time.time()
    topic = message.topic().removeprefix(settings.topic_prefix)
    if topic == registry.DLQ.name:
        headers = {k: (v or b"").decode(errors="replace") for k, v in message.headers() or []}
        state.add_dead_letter(
            stage=headers.get("dom.stage", ""),
            source_topic=headers.get("dom.source.topic", ""),
            error=headers.get("dom.error", ""),
            at=at,
        )
        return
    from schemas.codec import DecodeError

    try:
        state.add(codec.decode(message.value()), at)
    except DecodeError:
        return  # the pipeline dead-letters what it cannot read; the summary just skips it


def run_summary(
    settings: Settings,
    urls: list[str],
    stop: threading.Event | None = None,
    *,
    since_ms: int | None = None,
    console: Console | None = None,
    health_urls: Sequence[str] = (),
    sync_stats_url: str | None = None,
) -> SummaryState:
    """Tail the pipeline's topics and redraw every second until ``stop`` is set or Ctrl-C;
    ``health_urls`` are the workers' ``/health/`` pages, asked every few seconds, and
    ``sync_stats_url`` the channel sync's ``/stats`` (its stock pushes)."""
    from rich.live import Live

    from dom.sync_stats import SyncStatsPoller
    from dom.worker_health import HealthPoller, health_lines
    from schemas.codec import Codec

    codec = Codec.from_url(
        settings.schema_registry_url, **(settings.schema_registry_config() or {})
    )
    state = SummaryState()
    consumer = tail_consumer(settings, [t.name for t in SUMMARY_TOPICS], since_ms)
    poller = HealthPoller(health_urls).start()
    sync_stats = SyncStatsPoller(sync_stats_url).start()

    def screen() -> RenderableType:
        now = time.time()
        state.stock_pushes = sync_stats.stock()
        return render(state, urls, now, health_lines(poller.answers(), now))

    try:
        with Live(screen(), console=console, auto_refresh=False) as live:
            next_draw = time.monotonic()
            while stop is None or not stop.is_set():
                for message in consumer.consume(2000, 0.2):
                    feed(state, settings, codec, message)
                if time.monotonic() >= next_draw:
                    live.update(screen(), refresh=True)
                    next_draw = time.monotonic() + 1.0
    except KeyboardInterrupt:
        pass
    finally:
        poller.stop()
        sync_stats.stop()
        consumer.close()
    return state
