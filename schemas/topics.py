"""The one topic registry: name, key, value records and retention of every topic the pipeline uses.

Connectors, stages, `dom topics create` and the tests all read topic names from here, so a
topic is declared once. Names are the contract's; a deployment may put a prefix in front of all
of them (``DOM_TOPIC_PREFIX``) to share a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Direction(StrEnum):
    INBOUND = "inbound"  # upstream systems produce
    OUTBOUND = "outbound"  # the pipeline produces, users consume
    INTERNAL = "internal"  # between the pipeline's own stages


@dataclass(frozen=True)
class Topic:
    """One topic of the registry."""

    name: str
    key: str
    records: tuple[str, ...]
    direction: Direction
    compacted: bool = False
    description: str = ""
    table: str | None = None  # a stage table's changelog: the table's name
    max_message_bytes: int | None = None  # None: the broker's default (1 MiB)
    batched: bool = False
    """The records a stage's batch sends here go in one ``RecordBatch`` message per partition
    (streams/runtime/envelopes.py); its readers take both that and single records."""
    packable: bool = False
    """An upstream producer may pack records of one partition in a ``RecordBatch`` message (a
    bulk load: ``ContractProducer.send_bulk``); the stage reading it takes both that and single
    records, and dead-letters a packed record whose key belongs in another partition."""

    @property
    def unpacked(self) -> bool:
        """Whether its readers unpack ``RecordBatch`` messages."""
        return self.batched or self.packable

    def config(self) -> dict[str, str]:
        """Topic-level configs for CreateTopics."""
        if self.compacted:
            config = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
        else:
            config = {"cleanup.policy": "delete"}
        if self.max_message_bytes is not None:
            config["max.message.bytes"] = str(self.max_message_bytes)
        return config


def _records(*names: str) -> tuple[str, ...]:
    return tuple(f"dom.v1.{n}" for n in names)


LOCATIONS = Topic(
    "dom.locations.v1",
    "location_id",
    _records("Location"),
    Direction.INBOUND,
    compacted=True,
    description="Location master (DCs and stores)",
)
PRODUCTS = Topic(
    "dom.products.v1",
    "sku",
    _records("Product"),
    Direction.INBOUND,
    compacted=True,
    description="Product master",
)
STOCK = Topic(
    "dom.stock.v1",
    "sku",
    _records("StockEvent"),
    Direction.INBOUND,
    description="On-hand snapshots, adjustments and safety stock per location (a bulk load may "
    "pack each partition's in RecordBatch messages)",
    packable=True,
)
ORDERS = Topic(
    "dom.orders.v1",
    "order_id",
    _records("OrderPlaced", "OrderCancelled"),
    Direction.INBOUND,
    description="Orders from every channel",
)
FULFILLMENT_EVENTS = Topic(
    "dom.fulfillment.events.v1",
    "order_id",
    _records("FulfillmentUpdate"),
    Direction.INBOUND,
    description="Warehouse and store updates on shipments",
)
RETURNS = Topic(
    "dom.returns.v1",
    "order_id",
    _records("ReturnRequested", "ReturnReceived"),
    Direction.INBOUND,
    description="Return requests and receipts",
)
ORDER_ACTIONS = Topic(
    "dom.order-actions.v1",
    "order_id",
    _records("OrderAction"),
    Direction.INBOUND,
    description="What operators and upstream systems do to a live order",
)
RULES = Topic(
    "dom.rules.v1",
    "rule_id",
    _records("Rule"),
    Direction.INBOUND,
    compacted=True,
    description="Operator rules; a tombstone deletes",
)
CHANNELS = Topic(
    "dom.channels.v1",
    "channel",
    _records("ChannelPolicy"),
    Direction.INBOUND,
    compacted=True,
    description="What each sales channel may sell from; a tombstone: every location, no buffer",
)

ORDER_STATUS = Topic(
    "dom.order-status.v1",
    "order_id",
    _records("OrderStatusChanged"),
    Direction.OUTBOUND,
    description="Every status change of every order",
)
FULFILLMENT_COMMANDS = Topic(
    "dom.fulfillment.commands.v1",
    "location_id",
    _records("FulfillmentCommand"),
    Direction.OUTBOUND,
    description="What each location must ship, pick up or transfer",
)
PACKAGING_COMMANDS = Topic(
    "dom.packaging.commands.v1",
    "location_id",
    _records("PackagingCommand"),
    Direction.OUTBOUND,
    description="How each shipment is packed",
)
RETURN_LABEL_COMMANDS = Topic(
    "dom.return-labels.commands.v1",
    "order_id",
    _records("ReturnLabelCommand"),
    Direction.OUTBOUND,
    description="Printable return labels",
)
AVAILABILITY = Topic(
    "dom.inventory.availability.v1",
    "sku",
    _records("Availability"),
    Direction.OUTBOUND,
    compacted=True,
    description="Available-to-promise per SKU and location, and what each channel may sell",
)
CHANNEL_AVAILABILITY = Topic(
    "dom.channel-availability.v1",
    "channel_sku",
    _records("ChannelAvailability"),
    Direction.OUTBOUND,
    compacted=True,
    description="What each sales channel may sell of each SKU (key <channel>|<sku>), with "
    "DOM_CHANNEL_AVAILABILITY_TOPIC=true",
)
CHANNEL_SYNC = Topic(
    "dom.channel-sync.v1",
    "call_id",
    _records("ChannelCall"),
    Direction.OUTBOUND,
    compacted=True,
    description="What the channel sync told each sales channel, and what it still tries to",
)
MAX_DEAD_LETTER_BYTES = 2 * 1024 * 1024
"""The largest record of the dead-letter topic, and of what a worker sends. A dead letter is
its input as it came, up to the broker's default 1 MiB a record, plus the reasons in headers:
with the default limit, the dead letter of an input near 1 MiB could not be sent, and the stage
that refused the input stopped on it, again after every restart."""

DLQ = Topic(
    "dom.dlq.v1",
    "original key",
    (),
    Direction.OUTBOUND,
    description="Undecodable or invalid inputs, original bytes, reason in headers",
    max_message_bytes=MAX_DEAD_LETTER_BYTES,
)

KPIS = Topic(
    "dom.kpis.v1",
    "key",
    _records("KpiValue"),
    Direction.OUTBOUND,
    compacted=True,
    description="KPI buckets per series, hour or day window (DOM_TIMEZONE) and dimension, as "
    "they stand; keyed series|grain|window_start|dimension (dom report reads it)",
)

CONTRACT_TOPICS: tuple[Topic, ...] = (
    LOCATIONS,
    PRODUCTS,
    STOCK,
    ORDERS,
    FULFILLMENT_EVENTS,
    RETURNS,
    ORDER_ACTIONS,
    RULES,
    CHANNELS,
    ORDER_STATUS,
    FULFILLMENT_COMMANDS,
    PACKAGING_COMMANDS,
    RETURN_LABEL_COMMANDS,
    AVAILABILITY,
    CHANNEL_AVAILABILITY,
    CHANNEL_SYNC,
    KPIS,
    DLQ,
)

# Between the pipeline's own stages (the order saga's scatter/gather over sku owners).
SKU_COMMANDS = Topic(
    "dom.internal.sku-commands.v1",
    "sku",
    _records("SkuCommand", "ChannelRefresh"),
    Direction.INTERNAL,
    description="Reserve/release/consume requests, and channel refreshes, to the owner of a sku",
    batched=True,
)
SKU_RESULTS = Topic(
    "dom.internal.sku-results.v1",
    "order_id",
    _records("SkuResult", "OrderPurge"),
    Direction.INTERNAL,
    description="Sku owners' answers, and the order stage's retention commands, to the owner "
    "of the order",
    batched=True,
)

KPI_DELTAS = Topic(
    "dom.internal.kpi-deltas.v1",
    "family",
    _records("KpiDelta", "KpiRetire"),
    Direction.INTERNAL,
    description="What each input of the KPI facts stage adds to each KPI bucket, and the KPI "
    "retention commands, to the owner of the bucket's family",
    batched=True,
)

KPI_FORGET = Topic(
    "dom.internal.kpi-forget.v1",
    "order_id",
    _records("KpiForget"),
    Direction.INTERNAL,
    description="The KPI facts stage's retention commands, to the owner of the order's facts",
    batched=True,
)

INTERNAL_TOPICS: tuple[Topic, ...] = (SKU_COMMANDS, SKU_RESULTS, KPI_DELTAS, KPI_FORGET)

ALL_TOPICS: tuple[Topic, ...] = CONTRACT_TOPICS + INTERNAL_TOPICS


# The stages' tables (streams/runtime/raw.py ``raw_table``) and their changelogs. Faust 0.15.3
# names a table's changelog ``<app_id>-<table>-changelog`` (faust/tables/base.py), compacted,
# with the table's partitions, and creates it itself at start-up when it is missing. Its own
# clients may then not know it yet: the first table write found "0 partitions"
# (PartitionsMismatch) and the stage crashed in a loop for minutes. So `dom topics create`
# creates them up front, under the same prefix as every topic (the app id is the prefix
# followed by "dom").
def _changelog(table: str, key: str, description: str) -> Topic:
    return Topic(
        f"dom-{table}-changelog",
        key,
        (),
        Direction.INTERNAL,
        compacted=True,
        description=description,
        table=table,
    )


ORDERS_CHANGELOG = _changelog("orders", "order_id", "The order stage's table: each order's saga")
INVENTORY_CHANGELOG = _changelog(
    "inventory", "sku", "The inventory stage's table: each sku's stock"
)

RULES_CHANGELOG = _changelog(
    "rules", "rule_id", "The rules stage's table: what it read of each rule, in order"
)

KPI_FACTS_CHANGELOG = _changelog(
    "kpi-facts", "order_id", "The KPI facts stage's table: what each order has counted"
)
KPI_BUCKETS_CHANGELOG = _changelog(
    "kpi-buckets", "bucket", "The KPI bucket stage's table: each bucket's sums"
)

CHANGELOG_TOPICS: tuple[Topic, ...] = (
    ORDERS_CHANGELOG,
    INVENTORY_CHANGELOG,
    RULES_CHANGELOG,
    KPI_FACTS_CHANGELOG,
    KPI_BUCKETS_CHANGELOG,
)
"""Not part of the contract (their values are the stages' own JSON), but the pipeline's."""


_BY_RECORD = {record: topic for topic in ALL_TOPICS for record in topic.records}


def topic_for(avro_name: str) -> Topic:
    """The one topic a record travels on; its ``key`` names the record field used as key."""
    try:
        return _BY_RECORD[avro_name]
    except KeyError:
        raise KeyError(f"no topic carries {avro_name!r}") from None


def by_name(name: str) -> Topic:
    """The registry entry of a topic, by its unprefixed name."""
    for topic in ALL_TOPICS:
        if topic.name == name:
            return topic
    raise KeyError(f"no topic {name!r} in the registry")
