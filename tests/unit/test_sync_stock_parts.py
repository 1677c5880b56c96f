"""The stock push's pure parts: Shopify's ``Link`` header, ``userErrors`` by quantity, the
GraphQL cost bucket, and which figures go out in which call (held ones for skus the shop does
not sell yet)."""

from __future__ import annotations

import asyncio

import pytest

from connectors.sync.backoff import CostBudget
from connectors.sync.http import Answer, ChannelHttp, GiveUp
from connectors.sync.stock import BATCH, ShopifyStock, next_page, refused_by_index


def test_next_page_is_the_rel_next_link_as_path_and_query() -> None:
    header = (
        '<https://shop.example/admin/api/2025-01/products.json?limit=250&page_info=abc>; rel="next"'
    )
    assert next_page(header) == "/admin/api/2025-01/products.json?limit=250&page_info=abc"


def test_next_page_keeps_commas_inside_the_url() -> None:
    header = (
        "<https://s/admin/api/2025-01/products.json?fields=id,variants&page_info=p>; "
        'rel="previous", <https://s/admin/api/2025-01/products.json?fields=id,variants'
        '&page_info=n>; rel="next"'
    )
    assert next_page(header) == "/admin/api/2025-01/products.json?fields=id,variants&page_info=n"


def test_next_page_skips_previous_and_ends_without_next() -> None:
    both = (
        '<https://s/admin/api/2025-01/products.json?page_info=p>; rel="previous", '
        '<https://s/admin/api/2025-01/products.json?page_info=n>; rel="next"'
    )
    assert next_page(both) == "/admin/api/2025-01/products.json?page_info=n"
    assert next_page('<https://s/x.json?page_info=p>; rel="previous"') is None
    assert next_page(None) is None


def test_user_errors_name_their_quantity_or_the_whole_call() -> None:
    errors = [
        {
            "code": "ITEM_NOT_STOCKED_AT_LOCATION",
            "field": ["input", "quantities", "2", "locationId"],
            "message": "The specified inventory item is not stocked at the location.",
        },
        {"code": "INVALID_REASON", "field": ["input", "reason"], "message": "bad reason"},
    ]
    by_index, general = refused_by_index(errors)
    assert by_index == {
        2: "ITEM_NOT_STOCKED_AT_LOCATION: The specified inventory item is not stocked at the "
        "location."
    }
    assert general == ["INVALID_REASON: bad reason"]


def test_cost_budget_waits_for_the_points_a_call_needs() -> None:
    budget = CostBudget()
    assert budget.wait(10, now=0.0) == 0.0  # nothing seen yet: go
    status = {"maximumAvailable": 2000.0, "currentlyAvailable": 4.0, "restoreRate": 100.0}
    budget.observe(status, now=100.0)
    assert budget.wait(10, now=100.0) == 0.06  # 6 points short at 100 a second
    assert budget.wait(10, now=100.06) == 0.0
    budget.observe({**status, "currentlyAvailable": 2000.0}, now=200.0)
    budget.spend(10, now=200.0)
    assert budget.available == 1990.0
    assert budget.wait(2500, now=300.0) == 5.0  # it refills to its size, no further


def _stock(items: dict[str, int]) -> ShopifyStock:
    http = ChannelHttp.__new__(ChannelHttp)  # not called: batching is local
    stock = ShopifyStock(http, http, "2025-01", location_id=1)
    stock.items = dict(items)
    return stock


def test_figures_of_unknown_skus_are_held_until_the_shop_sells_them() -> None:
    stock = _stock({"A": 11, "B": 12})
    assert stock.batches({"A": 3, "X": 5}) == [{"A": 3}]
    assert stock.held == {"X": 5}
    assert stock.batches({"X": 4}) == []  # the latest figure is held, still unknown
    assert stock.held == {"X": 4}
    stock.items["X"] = 13  # the products were read again and the shop sells X now
    assert stock.batches({"B": 1}) == [{"X": 4, "B": 1}]
    assert stock.held == {}


def test_many_figures_go_in_calls_of_at_most_a_batch() -> None:
    skus = {f"S{n}": n for n in range(BATCH * 2 + 1)}
    stock = _stock({sku: n for n, sku in enumerate(skus)})
    batches = stock.batches(skus)
    assert [len(b) for b in batches] == [BATCH, BATCH, 1]
    assert {sku: n for b in batches for sku, n in b.items()} == skus


def test_a_shop_that_names_no_primary_location_is_given_up_saying_what_to_set() -> None:
    class NoLocation:
        async def call(self, method: str, path: str, name: str, **_: object) -> Answer:
            return Answer(200, {"shop": {"id": 1, "name": "New shop"}})

    stock = ShopifyStock(NoLocation(), NoLocation(), "2025-01")  # type: ignore[arg-type]
    with pytest.raises(GiveUp, match="set DOM_SHOPIFY_LOCATION_ID"):
        asyncio.run(stock.learn(["SKU-1"]))
