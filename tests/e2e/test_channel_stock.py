"""The web store's sellable stock reaches Shopify, on the real broker and over HTTP: what the
pipeline publishes for channel WEB becomes the stand-in shop's ``available`` level of each sku
it sells, through GraphQL's ``inventorySetQuantities`` under a tight cost limit; a stock change
moves it; a figure for a sku the shop does not sell yet waits, and goes out (with no new stock
news) once the shop sells it; a figure Shopify refuses lands on the dead-letter topic with
Shopify's reason. One pipeline for all of it: each start costs seconds of the suite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from config.settings import Settings
from schemas.dlq import HEADER_ERROR, HEADER_STAGE
from schemas.enums import LocationKind
from schemas.models import Availability, Capability
from tests.e2e.channels import RunningSync, Standins, wait_for
from tests.e2e.harness import Pipeline
from tests.e2e.test_channel_sync import sync_settings, with_urls
from tests.unit.factories import make_location, make_product, make_stock_event


def start(settings: Settings, tmp_path: Path) -> Pipeline:
    """A DC and a store, both serving the web store (no policy: every location does)."""
    pipeline = Pipeline(settings, tmp_path)
    pipeline.start_worker("w1")
    store = make_location(
        "ST-NYC", kind=LocationKind.STORE, capabilities=(Capability.SHIP_FROM_STORE,)
    )
    skus = ["SKU-1", "SKU-2", "SKU-3"]
    pipeline.produce([make_location("DC-EAST"), store, *map(make_product, skus)])
    pipeline.produce(
        [
            make_stock_event("SKU-1", "DC-EAST", 40),
            make_stock_event("SKU-1", "ST-NYC", 5),
            make_stock_event("SKU-2", "DC-EAST", 7),
            make_stock_event("SKU-3", "DC-EAST", 3),
        ]
    )
    return pipeline


def shop_levels(standins: Standins) -> dict[str, int]:
    return {
        level["sku"]: level["available"]
        for level in standins.control("GET", "shopify/inventory")["levels"]
    }


def showing(standins: Standins, wanted: dict[str, int]) -> Callable[[], bool]:
    return lambda: all(shop_levels(standins).get(s) == n for s, n in wanted.items())


def test_web_figures_become_the_shops_levels_and_wait_for_skus_it_does_not_sell(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = sync_settings(make_settings, shopify_catalogue_refresh_s=1.0)
    pipeline = start(settings, tmp_path)
    try:
        with Standins() as standins:
            standins.control("POST", "shopify/products", {"skus": ["SKU-1", "SKU-2"]})
            # Two mutations a second at most: the sync paces itself from throttleStatus.
            standins.control(
                "POST",
                "shopify/graphql-throttle",
                {"maximum_available": 20, "restore_rate": 20},
            )
            shop_settings = with_urls(settings, standins)
            with RunningSync(shop_settings) as running:
                wait_for("the first figures", showing(standins, {"SKU-1": 45, "SKU-2": 7}))
                for units in range(41, 61):  # twenty counts at the DC, one after the other
                    pipeline.produce([make_stock_event("SKU-1", "DC-EAST", units)])
                wait_for("the last count", showing(standins, {"SKU-1": 65}))
                assert "SKU-3" not in shop_levels(standins)  # the shop does not sell it
                assert running.stock()["held"] == 1

                # The merchant adds the product: its figure goes out with no new stock news.
                standins.control("POST", "shopify/products", {"skus": ["SKU-3"]})
                wait_for("SKU-3 in the shop", showing(standins, {"SKU-3": 3}))
                stats = running.stock()
            assert stats.get("failed", 0) == 0 and stats.get("refused", 0) == 0
            assert stats["pushed"] >= 4 and stats["held"] == 0
            assert all(c["status"] == 200 for c in standins.shop_calls("POST", "/graphql.json"))

            # Pointed at a Shopify location the items are not stocked at, the sync sees each
            # figure refused (userErrors), and each goes to the dead-letter topic saying why.
            moved = shop_settings.model_copy(update={"shopify_location_id": 99})
            with RunningSync(moved) as running:
                pipeline.produce([make_stock_event("SKU-1", "DC-EAST", 70)])
                wait_for("the refusal", lambda: running.stock().get("refused", 0) >= 1)
            [letter] = pipeline.read_raw("dom.dlq.v1", 1)
            headers = {k: v.decode() for k, v in letter.headers()}
            assert headers[HEADER_STAGE] == "sync"
            assert headers[HEADER_ERROR].startswith("shopify refused the figure of SKU-1: ")
            assert "INVALID_LOCATION" in headers[HEADER_ERROR]
            record = pipeline.codec.decode(letter.value())  # the sku's availability, as it came
            assert isinstance(record, Availability) and record.sku == "SKU-1"
            assert {f.channel.value: f.available for f in record.channels}["WEB"] == 75
            assert shop_levels(standins)["SKU-1"] == 65  # as the shop had it: nothing applied
    finally:
        pipeline.stop_all()
