"""What an SRE sees: after a short burst, a worker's /metrics counts what really happened."""

from __future__ import annotations

import time
import urllib.request
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

from config.settings import Settings
from connectors.producer import ContractProducer
from schemas.enums import Channel
from tests.e2e.harness import Pipeline
from tests.e2e.invariants import wait_for_outcomes
from tests.e2e.world import one_dc
from tests.unit.factories import make_order

ORDERS = 24


def scrape(pipeline: Pipeline) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """sample name -> labels -> value."""
    with urllib.request.urlopen(pipeline.url("w1", "/metrics")) as response:
        text = response.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def total(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return sum(
        value
        for key, value in samples.get(name, {}).items()
        if all(dict(key).get(k) == v for k, v in labels.items())
    )


def test_metrics_count_a_burst(pipeline: Pipeline, settings: Settings) -> None:
    one_dc(pipeline, {"SKU-1": ORDERS // 2})
    channels = [Channel.WEB, Channel.MARKETPLACE, Channel.POS]
    orders = [
        make_order(f"M-{n}", lines=[("SKU-1", 1)], channel=channels[n % 3]) for n in range(ORDERS)
    ]
    pipeline.produce(orders)
    with ContractProducer(settings) as raw:
        raw.send_raw("dom.orders.v1", b"M-X", b"garbage")
    wait_for_outcomes(pipeline, {o.order_id for o in orders}, timeout=120)

    deadline = time.monotonic() + 30
    while True:  # the letter and the lag gauge follow the outcomes by a moment
        samples = scrape(pipeline)
        done = total(samples, "dom_dead_letters_total") >= 1 and "dom_consumer_lag" in samples
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    outcomes = total(samples, "dom_order_outcomes_total")
    assert outcomes == ORDERS, samples.get("dom_order_outcomes_total")
    for channel in channels:
        assert total(samples, "dom_order_outcomes_total", channel=channel.value) == ORDERS / 3
    # stock for half of them: the rest are backordered
    assert total(samples, "dom_order_outcomes_total", status="ALLOCATED") == ORDERS / 2
    assert total(samples, "dom_order_outcomes_total", status="BACKORDERED") == ORDERS / 2
    assert total(samples, "dom_decision_latency_seconds_count") == ORDERS
    assert total(samples, "dom_shipments_per_order_count") == ORDERS
    assert total(samples, "dom_stage_events_in_total", stage="orders") >= ORDERS + 1
    assert total(samples, "dom_stage_events_in_total", stage="inventory") >= ORDERS / 2 + 1
    assert total(samples, "dom_stage_records_out_total", record="FulfillmentCommand") == (
        ORDERS / 2
    )
    # One availability record per sku and inventory batch: at least the stock and a reservation.
    updates = total(samples, "dom_availability_updates_total")
    assert updates >= 2
    assert updates == total(samples, "dom_stage_records_out_total", record="Availability")
    assert total(samples, "dom_dead_letters_total", stage="orders", kind="undecodable") == 1
    assert total(samples, "dom_stage_events_failed_total", stage="orders") == 1
    assert total(samples, "dom_stage_batch_seconds_count", stage="orders") >= 1
    batches = total(samples, "dom_stage_batch_seconds_count", stage="orders")
    for step in ("state", "records"):  # every batch waits on the broker twice
        waits = total(samples, "dom_stage_broker_wait_seconds_count", stage="orders", step=step)
        assert batches <= waits <= batches + 1  # + 1: a batch scraped between its steps
        assert total(samples, "dom_stage_broker_wait_seconds_sum", stage="orders", step=step) > 0
    assert "dom_consumer_lag" in samples and "dom_table_keys" in samples
    # RocksDB's own memory, by table: the orders written are in a memtable still.
    assert total(samples, "dom_table_memory_bytes", kind="memtables") > 0
    # The worker froze what it holds for good once its view was complete, and times its GCs.
    assert total(samples, "dom_gc_frozen_objects") > 10_000
    assert total(samples, "dom_gc_pause_seconds_count") >= 1
    assert any(name.startswith("faust_") for name in samples), "Faust's own sensor"
    labels = {k for series in samples.values() for key in series for k, _ in key}
    assert not labels & {"order_id", "sku"}, "labels stay bounded"
