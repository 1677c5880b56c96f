"""The stock push against the stand-in shop (loopback HTTP, no broker): the shop's products read
page by page, figures set as its inventory levels a batch per call, a repeat that changes
nothing, figures of skus the shop does not sell held until it does, figures it refuses named
with its reason, throttling that says how long to wait, and a bad token given up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from connectors.standin.app import running_standin
from connectors.standin.shopify import StandinShop
from connectors.standin.shopify_inventory import ProductSpec, VariantSpec
from connectors.standin.spapi import StandinSpApi
from connectors.sync.backoff import CallBudget
from connectors.sync.http import CallMetrics, ChannelHttp, GiveUp, TryAgain
from connectors.sync.stock import ShopifyStock

TOKEN = "shpat_unit"
T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stocked(skus: list[str], **shop: object) -> StandinShop:
    made = StandinShop(access_token=TOKEN, **shop)  # type: ignore[arg-type]
    made.catalogue.add([ProductSpec(sku, (VariantSpec(sku, available=1),)) for sku in skus])
    return made


@asynccontextmanager
async def client(
    shop: StandinShop, *, token: str = TOKEN, location_id: int | None = None, clock: Clock
) -> AsyncIterator[ShopifyStock]:
    metrics = CallMetrics(CollectorRegistry())
    async with (
        running_standin(shop, StandinSpApi()) as url,
        aiohttp.ClientSession() as session,
    ):
        headers = {"X-Shopify-Access-Token": token}
        rest = ChannelHttp(
            session, "shopify", url, headers, metrics, budget=CallBudget(leak_per_s=20.0)
        )
        graphql = ChannelHttp(session, "shopify", url, headers, metrics)
        yield ShopifyStock(
            rest, graphql, "2025-01", location_id=location_id, refresh_s=60.0, clock=clock
        )


def run(body: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(body())  # type: ignore[arg-type]


def levels(shop: StandinShop) -> dict[str, tuple[int, int]]:
    """sku -> (available, times a mutation set it)."""
    catalogue = shop.catalogue
    return {
        catalogue.items[item].sku: (level.available, level.sets)
        for (item, _), level in catalogue.levels.items()
    }


def graphql_calls(shop: StandinShop) -> int:
    return sum(1 for c in shop.recorder.calls if c.path.endswith("/graphql.json"))


def test_figures_become_the_shops_levels_a_batch_per_call() -> None:
    skus = [f"SKU-{n:03d}" for n in range(260)]  # two pages of products
    shop = stocked(skus)

    async def body() -> None:
        async with client(shop, clock=Clock()) as stock:
            await stock.learn(skus)
            assert len(stock.items) == 260 and stock.location_id == shop.location_id
            [first, second] = stock.batches({sku: n for n, sku in enumerate(skus)})
            for batch in (first, second):
                pushed = await stock.push(batch)
                assert (pushed.set, pushed.refused) == (len(batch), {})
            await stock.push({"SKU-000": 0})  # the same figure again

    run(body)
    got = levels(shop)
    assert got["SKU-001"] == (1, 1) and got["SKU-259"] == (259, 1)
    assert got["SKU-000"] == (0, 2)
    assert graphql_calls(shop) == 3
    pages = [c for c in shop.recorder.calls if c.path.endswith("/products.json")]
    assert len(pages) == 2 and "page_info=" in pages[1].query


def test_a_figure_for_a_sku_the_shop_does_not_sell_waits_until_it_does() -> None:
    shop = stocked(["SKU-1"])
    clock = Clock()

    async def body() -> None:
        async with client(shop, clock=clock) as stock:
            await stock.learn(["SKU-1", "NEW"])
            assert stock.batches({"SKU-1": 4, "NEW": 9}) == [{"SKU-1": 4}]
            assert stock.held == {"NEW": 9}
            shop.catalogue.add([ProductSpec("NEW", (VariantSpec("NEW"),))])
            await stock.learn([])  # read too recently: not again yet
            assert "NEW" not in stock.items
            clock.now += 61
            await stock.learn([])  # the held figure's sku asks for a new reading
            [batch] = stock.batches({})
            assert batch == {"NEW": 9}
            await stock.push(batch)

    run(body)
    assert levels(shop)["NEW"] == (9, 1)


def test_figures_the_shop_refuses_are_named_and_the_rest_set() -> None:
    shop = stocked(["SKU-1", "SKU-2"])
    shop.catalogue.levels.pop(next(k for k in shop.catalogue.levels))  # SKU-1 not stocked there

    async def body() -> None:
        async with client(shop, clock=Clock()) as stock:
            await stock.learn(["SKU-1", "SKU-2"])
            return await stock.push({"SKU-1": 3, "SKU-2": 5})

    pushed = run(body)
    assert pushed.set == 1
    assert list(pushed.refused) == ["SKU-1"]
    assert pushed.refused["SKU-1"].startswith("ITEM_NOT_STOCKED_AT_LOCATION: ")
    assert levels(shop)["SKU-2"] == (5, 1)
    assert graphql_calls(shop) == 2  # a call with a user error applies nothing: sent again


def test_a_throttled_shop_says_how_long_to_wait() -> None:
    # The shop's bucket on the test's clock, not the wall's: a loaded machine took 0.2 s
    # between the calls, the bucket refilled 2 points meanwhile, and the wait said was 0.3 s.
    clock = Clock()
    shop = stocked(["SKU-1"], graphql_maximum=25.0, graphql_restore_rate=10.0, now=clock)

    async def body() -> TryAgain:
        async with client(shop, clock=clock) as stock:
            await stock.learn(["SKU-1"])
            await stock.push({"SKU-1": 1})
            await stock.push({"SKU-1": 2})
            stock.budget.available = 25.0  # another app drained the bucket behind our back
            with pytest.raises(TryAgain) as caught:
                await stock.push({"SKU-1": 3})
            return caught.value

    throttled = run(body)
    assert throttled.throttled
    assert throttled.retry_after == pytest.approx(0.5)  # 5 points short at 10/s
    assert levels(shop)["SKU-1"] == (2, 2)


def test_a_bad_token_is_given_up() -> None:
    shop = stocked(["SKU-1"])

    async def body() -> None:
        async with client(shop, token="shpat_wrong", clock=Clock()) as stock:
            with pytest.raises(GiveUp, match="answered 401"):
                await stock.learn(["SKU-1"])

    run(body)


def test_a_shop_that_sells_nothing_yet_is_read_again_soon() -> None:
    shop = stocked([])
    clock = Clock()

    async def body() -> None:
        async with client(shop, clock=clock) as stock:
            await stock.learn(["SKU-1"])
            assert stock.batches({"SKU-1": 2}) == [] and stock.held == {"SKU-1": 2}
            shop.catalogue.add([ProductSpec("SKU-1", (VariantSpec("SKU-1"),))])
            clock.now += 16  # far less than refresh_s (60 here), past the empty shop's 15 s
            await stock.learn([])
            [batch] = stock.batches({})
            await stock.push(batch)

    run(body)
    assert levels(shop)["SKU-1"] == (2, 1)
