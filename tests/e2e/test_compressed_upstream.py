"""Upstream systems compress what they produce with whichever codec their Kafka client offers
(the Java client's ``compression.type``, librdkafka's). The workers read every one: an order
of each codec is routed, on master data that came compressed too."""

from __future__ import annotations

from config.settings import Settings
from connectors.producer import ContractProducer
from schemas.codec import Codec
from schemas.enums import ROUTING_OUTCOMES
from schemas.models import Message, OrderStatusChanged
from tests.e2e.harness import Pipeline
from tests.unit.factories import make_location, make_order, make_product, make_stock_event

CODECS = ("gzip", "snappy", "lz4", "zstd")


def _produce(settings: Settings, codec: str, records: list[Message]) -> None:
    """``records`` from an upstream producer whose batches are compressed with ``codec``."""
    upstream = settings.model_copy(update={"producer_compression": codec})
    with ContractProducer(upstream, Codec()) as producer:
        producer.send_all(records)
    assert producer.report.failed == 0, producer.report.errors


def test_orders_and_stock_compressed_with_any_codec_are_routed(pipeline: Pipeline) -> None:
    _produce(
        pipeline.settings,
        "lz4",
        [
            make_location("DC-EAST"),
            make_product("SKU-1"),
            make_stock_event("SKU-1", "DC-EAST", 100, event_id="count-1"),
        ],
    )
    pipeline.availability_where("SKU-1", lambda figures: "DC-EAST" in figures)
    for codec in CODECS:
        _produce(pipeline.settings, codec, [make_order(f"ORD-{codec}", lines=[("SKU-1", 1)])])

    def routed(records: list[Message]) -> dict[str, str]:
        return {
            r.order_id: r.status.value
            for r in records
            if isinstance(r, OrderStatusChanged) and r.status in ROUTING_OUTCOMES
        }

    records = pipeline.read("dom.order-status.v1", lambda got: len(routed(got)) == len(CODECS))
    assert routed(records) == {f"ORD-{codec}": "ALLOCATED" for codec in CODECS}
    log = pipeline.workers["w1"].log_file.read_text(errors="replace")
    assert "UnsupportedCodecError" not in log
