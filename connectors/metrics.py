"""Prometheus metrics of the HTTP connector, read from its own counters at scrape time:
answers by source and kind, deliveries and delivery failures, remembered webhook ids and
orders."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class ConnectorCollector(Collector):
    """Turns a connector's ``stats()`` into metric families on every scrape."""

    def __init__(self, connector: Any) -> None:
        self._connector = connector

    def collect(self) -> Iterator[Metric]:
        stats = self._connector.stats()
        answers = CounterMetricFamily(
            "dom_connector_requests",
            "Requests answered, by source (shopify, shopify-cancelled, shopify-edited, "
            "shopify-updated, shopify-other, marketplace, marketplace-cancellations) and answer.",
            labels=["source", "answer"],
        )
        for name, count in stats["answers"].items():
            source, _, answer = name.partition(".")
            answers.add_metric([source, answer], count)
        yield answers
        delivery = stats["delivery"]
        yield CounterMetricFamily(
            "dom_connector_delivered", "Records the broker confirmed.", value=delivery["delivered"]
        )
        yield CounterMetricFamily(
            "dom_connector_produce_failures",
            "Records the broker refused or never confirmed.",
            value=delivery["failed"],
        )
        yield GaugeMetricFamily(
            "dom_connector_seen_ids", "Webhook ids remembered for dedup.", value=stats["seen_ids"]
        )
        yield GaugeMetricFamily(
            "dom_connector_orders_remembered",
            "Orders whose changes the connector follows (units asked to cancel, address).",
            value=stats["orders_remembered"],
        )
        yield GaugeMetricFamily(
            "dom_connector_in_flight", "Deliveries awaiting the broker.", value=stats["in_flight"]
        )


def exposition(connector: Any) -> bytes:
    registry = CollectorRegistry()
    registry.register(ConnectorCollector(connector))
    return generate_latest(registry)
