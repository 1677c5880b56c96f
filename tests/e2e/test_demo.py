"""`dom demo` against a real worker: a small world, rules, and traffic from every channel that
the pipeline routes, ships and completes."""

from __future__ import annotations

from collections import Counter

from click.testing import CliRunner

from config.settings import Settings
from connectors.demo_cli import demo
from schemas.enums import ROUTING_OUTCOMES
from schemas.models import (
    Channel,
    FulfillmentStatus,
    FulfillmentUpdate,
    Message,
    OrderPlaced,
    OrderStatusChanged,
)
from tests.e2e.harness import Pipeline


def test_demo_traffic_reaches_a_routing_outcome_for_every_channel(
    pipeline: Pipeline, settings: Settings
) -> None:
    env = {
        "DOM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "DOM_TOPIC_PREFIX": settings.topic_prefix,
        "DOM_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "DOM_DATA_DIR": str(settings.data_dir),
    }
    args = ["--skus", "200", "--stores", "5", "--rate", "20", "--duration", "15"]
    result = CliRunner().invoke(demo, [*args, "--seed", "3"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "world: 4 DCs, 5 stores, 200 SKUs" in result.output
    assert "published  gift-wrap" in result.output  # through `dom rules publish`
    assert "opening stock visible in the pipeline for" in result.output
    assert "demo stopped" in result.output

    placed = [
        pipeline.codec.decode(m.value()) for m in pipeline.read_changelog_messages("dom.orders.v1")
    ]
    channel_of = {o.order_id: o.channel for o in placed if isinstance(o, OrderPlaced)}
    assert set(channel_of.values()) == set(Channel)
    assert 250 <= len(channel_of) <= 320  # ~20/s for 15 s

    def every_channel_routed(records: list[Message]) -> bool:
        return set(_routed_channels(records, channel_of)) == set(Channel)

    statuses = pipeline.read("dom.order-status.v1", every_channel_routed, timeout=120)
    routed = _routed_channels(statuses, channel_of)
    assert set(routed) == set(Channel), (routed, pipeline.workers["w1"].log_tail())
    outcomes = [s for s in statuses if isinstance(s, OrderStatusChanged)]
    assert any(s.rules_fired for s in outcomes), "the default rules are live"
    counts = Counter(s.status.value for s in outcomes if s.status.value in ROUTING_OUTCOMES)
    assert counts["ALLOCATED"] > counts["BACKORDERED"], counts  # traffic met a stocked network

    # The demo played the locations: it answered commands, and orders moved on.
    updates = pipeline.read_changelog_messages("dom.fulfillment.events.v1")
    answered = {pipeline.codec.decode(m.value()) for m in updates}
    assert any(
        isinstance(u, FulfillmentUpdate) and u.status is FulfillmentStatus.SHIPPED for u in answered
    )
    assert {"SHIPPED", "COMPLETED"} & {s.status.value for s in outcomes}


def _routed_channels(records: list[Message], channel_of: dict[str, Channel]) -> dict[str, int]:
    routed: dict[str, int] = {}
    for s in records:
        if isinstance(s, OrderStatusChanged) and s.status.value in ROUTING_OUTCOMES:
            channel = channel_of.get(s.order_id)
            if channel is not None:
                routed[channel] = routed.get(channel, 0) + 1
    return routed
