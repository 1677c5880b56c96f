"""The Shopify stand-in's inventory side as a channel sync meets it: seeding the catalogue,
``shop.json``/``locations.json``, ``products.json`` paged by ``Link`` headers, and the
GraphQL ``inventorySetQuantities`` mutation with its user errors, its cost and its throttle."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from connectors.standin.app import create_standin_app
from connectors.standin.shopify import StandinShop
from tests.unit.test_standin_shopify import Clock, wall

TOKEN = "shpat_test_token"
AUTH = {"X-Shopify-Access-Token": TOKEN}
API = "/admin/api/2025-01"
GRAPHQL = f"{API}/graphql.json"
CONTROL = "/_standin/shopify"
LOCATION = 24826418
LOCATION_GID = f"gid://shopify/Location/{LOCATION}"

SET_QUANTITIES = """
mutation SetAvailable($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup {
      id
      createdAt
      reason
      referenceDocumentUri
      changes {
        name
        delta
        quantityAfterChange
        item { id sku }
        location { id name }
      }
    }
    userErrors { code field message }
  }
}
"""


Client = TestClient[Any, Any]
Scenario = Callable[[Client, StandinShop, Clock], Awaitable[None]]


def run(scenario: Scenario, **shop_options: Any) -> None:
    clock = Clock()
    shop = StandinShop(**{"access_token": TOKEN, "now": clock, "wall": wall, **shop_options})

    async def main() -> None:
        async with TestClient(TestServer(create_standin_app(shop=shop))) as client:
            await scenario(client, shop, clock)

    asyncio.run(main())


async def seed(client: Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.post(f"{CONTROL}/products", json=body)
    assert response.status == 201, await response.text()
    return list((await response.json())["products"])


async def seed_socks(client: Client) -> dict[str, int]:
    """Two products, three variants: inventory item ids by sku."""
    products = await seed(
        client,
        {
            "products": [
                {
                    "title": "Socks",
                    "variants": [
                        {"sku": "SOCK-S", "price": "5.99", "available": 4},
                        {"sku": "SOCK-L", "available": 7},
                    ],
                },
                {"title": "Shoe", "variants": [{"sku": "SHOE-1", "price": "199.00"}]},
            ]
        },
    )
    return {v["sku"]: v["inventory_item_id"] for p in products for v in p["variants"]}


async def levels(client: Client) -> dict[str, dict[str, Any]]:
    body = await (await client.get(f"{CONTROL}/inventory")).json()
    return {level["sku"]: level for level in body["levels"]}


async def graphql(
    client: Client, query: str, variables: Any = None, **headers: str
) -> tuple[int, Any]:
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    response = await client.post(GRAPHQL, json=body, headers={**AUTH, **headers})
    return response.status, await response.json()


def item_gid(item_id: int) -> str:
    return f"gid://shopify/InventoryItem/{item_id}"


def set_input(*quantities: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {
        "input": {
            "name": "available",
            "reason": "correction",
            "referenceDocumentUri": "gid://dom-pipeline/ChannelSync/1",
            "quantities": list(quantities),
            **overrides,
        }
    }


def quantity(item_id: int, value: int, compare: int | None = None, **extra: Any) -> dict[str, Any]:
    entry = {"inventoryItemId": item_gid(item_id), "locationId": LOCATION_GID, "quantity": value}
    if compare is not None:
        entry["compareQuantity"] = compare
    return {**entry, **extra}


def test_seeding_stocks_every_variant_at_the_shops_location_and_reset_clears_it() -> None:
    async def scenario(client: Client, shop: StandinShop, clock: Clock) -> None:
        items = await seed_socks(client)
        products = await seed(client, {"skus": ["MUG-1", "MUG-2"]})
        assert [p["title"] for p in products] == ["MUG-1", "MUG-2"]
        assert [len(p["variants"]) for p in products] == [1, 1]
        ids = [p["id"] for p in products] + [v["id"] for p in products for v in p["variants"]]
        ids += list(items.values())
        assert len(set(ids)) == len(ids)
        held = await levels(client)
        assert set(held) == {"SOCK-S", "SOCK-L", "SHOE-1", "MUG-1", "MUG-2"}
        assert held["SOCK-S"] == {
            "sku": "SOCK-S",
            "inventory_item_id": items["SOCK-S"],
            "location_id": LOCATION,
            "available": 4,
            "updated_at": "2025-01-02T11:38:15+00:00",
            "sets": 0,
        }
        assert (held["SOCK-L"]["available"], held["MUG-1"]["available"]) == (7, 0)
        assert (await client.post(f"{CONTROL}/reset")).status == 200
        assert await levels(client) == {}

    run(scenario)


def test_the_same_seeding_gives_the_same_ids() -> None:
    seen: list[dict[str, int]] = []

    async def scenario(client: Client, shop: StandinShop, clock: Clock) -> None:
        seen.append(await seed_socks(client))

    run(scenario)
    run(scenario)
    assert seen[0] == seen[1]


def test_duplicate_skus_are_refused_and_nothing_is_created() -> None:
    async def scenario(client: Client, shop: StandinShop, clock: Clock) -> None:
        await seed(client, {"skus": ["SKU-1"]})
        for body in ({"skus": ["SKU-2", "SKU-1"]}, {"skus": ["SKU-3", "SKU-3"]}):
            response = await client.post(f"{CONTROL}/products", json=body)
            assert response.status == 422
            answer = await response.json()
            assert answer["error"].startswith("duplicate skus: ")
            assert answer["details"]["skus"] in (["SKU-1"], ["SKU-3"])
        assert set(await levels(client)) == {"SKU-1"}
        refused: list[dict[str, Any]] = [
            {},
            {"skus": ["A"], "products": []},
            {"skus": [""]},
            {"products": [{"title": "No variants", "variants": []}]},
            {"products": [{"title": "T", "variants": [{"sku": "X", "available": -1}]}]},
        ]
        for bad in refused:
            assert (await client.post(f"{CONTROL}/products", json=bad)).status == 400

    run(scenario)


def test_shop_and_locations_answer_shopifys_shapes() -> None:
    async def scenario(client: Client, shop: StandinShop, clock: Clock) -> None:
        response = await client.get(f"{API}/shop.json", headers=AUTH)
        assert response.status == 200
        assert response.headers["X-Shopify-Shop-Api-Call-Limit"] == "1/40"
        shown = (await response.json())["shop"]
        assert shown["id"] == 548380009
        assert shown["myshopify_domain"] == shown["domain"] == "standin-shop.myshopify.com"
        assert (shown["primary_location_id"], shown["currency"]) == (LOCATION, "USD")
        assert shown["name"] and shown["plan_name"]
        response = await client.get(f"{API}/locations.json", headers=AUTH)
        (location,) = (await response.json())["locations"]
        assert (location["id"], location["active"], location["name"]) == (
            LOCATION,
            True,
            "Shop location",
        )
        assert (await client.get(f"{API}/shop.json")).status == 401

    run(scenario)


def next_and_previous(link: str | None) -> dict[str, str]:
    """``{"next": url, "previous": url}`` from a ``Link`` header."""
    found: dict[str, str] = {}
    for part in (link or "").split(", "):
        if part:
            url, rel = part.split("; ")
            found[rel.removeprefix('rel="').removesuffix('"')] = url.strip("<>")
    return found


def test_products_page_through_link_headers_and_back() -> None:
    async def scenario(client: Client, shop: StandinShop, clock: Clock) -> None:
        await seed(client, {"skus": [f"SKU-{n}" for n in range(1, 6)]})
        response = await client.get(f"{API}/products.json?limit=2", headers=AUTH)
        pages, links = [], []
        while True:
            assert response.status == 200, await response.text()
            pages.append([p["variants"][0]["sku"] for p in (await response.json())["products"]])
            links.append(next_and_previous(response.headers.get("Link")))
            if "next" not in links[-1]:
                break
            url = urlsplit(links[-1]["next"])
            assert f"{url.scheme}://{url.netloc}" == str(client.make_url("")).rstrip("/")
            assert url.path == f"{API}/products.json"
            assert parse_qs(url.query)["limit"] == ["2"]
            response = await client.get(f"{url.path}?{url.query}", headers=AUTH)
        assert pages == [["SKU-1", "SKU-2"], ["SKU-3", "SKU-4"], ["SKU-5"]]
        assert [sorted(rels) for rels in links] == [["next"], ["next", "previous"], ["previous"]]
        back = urlsplit(links[2]["previous"])
        response = await client.get(f"{back.path}?{back.query}", headers=AUTH)
        products = (await response.json())["products"]
        assert [p["variants"][0]["sku"] for p in products] == ["SKU-3", "SKU-4"]

    run(scenario)


def test_products_show_variants_with_inventory_and_fields_filters_them() -> None:
    async def scenario(client: Client, shop: StandinShop, clock: Clock) -> None:
        items = await seed_socks(client)
        response = await client.get(f"{API}/products.json", headers=AUTH)
        assert "Link" not in response.headers
        socks, shoe = (await response.json())["products"]
        small, large = socks["variants"]
        assert (small["sku"], small["price"], small["inventory_quantity"]) == ("SOCK-S", "5.99", 4)
        assert (small["product_id"], small["inventory_item_id"]) == (socks["id"], items["SOCK-S"])
        assert (large["inventory_quantity"], shoe["variants"][0]["price"]) == (7, "199.00")
        response = await client.get(f"{API}/products.json?fields=id,variants&limit=1", headers=AUTH)
        (only,) = (await response.json())["products"]
        assert set(only) == {"id", "variants"}
        link = next_and_previous(response.headers["Link"])["next"]
        assert parse_qs(urlsplit(link).query)["fields"] == ["id,variants"]

    run(scenario)


def test_page_info_allows_only_limit_and_fields() -> None:
    async def scenario(client: Client, shop: StandinShop, clock: Clock) -> None:
        await seed(client, {"skus": ["A", "B", "C"]})
        response = await client.get(f"{API}/products.json?limit=1", headers=AUTH)
        page_info = parse_qs(urlsplit(next_and_previous(response.headers["Link"])["next"]).query)
        token = page_info["page_info"][0]
        path = f"{API}/products.json?page_info={token}"
        response = await client.get(f"{path}&limit=2&fields=id", headers=AUTH)
        assert response.status == 200
        assert len((await response.json())["products"]) == 2
        response = await client.get(f"{path}&since_id=1", headers=AUTH)
        assert response.status == 400
        assert await response.json() == {
            "errors": {
                "since_id": "since_id cannot be passed when page_info is present. See "
                "https://shopify.dev/api/usage/pagination-rest for more information."
            }
        }
        response = await client.get(f"{API}/products.json?page_info=garbage", headers=AUTH)
        assert (response.status, await response.json()) == (
            400,
            {"errors": {"page_info": "Invalid value."}},
        )
        response = await client.get(f"{API}/products.json?limit=251", headers=AUTH)
        assert response.status == 400

    run(scenario)


def test_set_quantities_applies_every_level_and_answers_the_changes() -> None:
    async def scenario(client: Client, shop: StandinShop, clock: Clock) -> None:
        items = await seed_socks(client)
        variables = set_input(
            quantity(items["SOCK-S"], 9, compare=4),
            quantity(items["SOCK-L"], 7, compare=7),  # already there: no change listed
            quantity(items["SHOE-1"], 2, compare=0),
        )
        status, answer = await graphql(client, SET_QUANTITIES, variables)
        assert status == 200, answer
        payload = answer["data"]["inventorySetQuantities"]
        assert payload["userErrors"] == []
        group = payload["inventoryAdjustmentGroup"]
        assert group["id"].startswith("gid://shopify/InventoryAdjustmentGroup/")
        assert (group["createdAt"], group["reason"]) == ("2025-01-02T11:38:15Z", "correction")
        assert group["referenceDocumentUri"] == "gid://dom-pipeline/ChannelSync/1"
        changes = [
            (c["item"]["sku"], c["name"], c["delta"], c["quantityAfterChange"])
            for c in group["changes"]
        ]
        assert changes == [
            ("SOCK-S", "available", 5, 9),
            ("SOCK-S", "on_hand", 5, 9),
            ("SHOE-1", "available", 2, 2),
            ("SHOE-1", "on_hand", 2, 2),
        ]
        assert {c["location"]["id"] for c in group["changes"]} == {LOCATION_GID}
        held = await levels(client)
        assert [(held[s]["available"], held[s]["sets"]) for s in items] == [(9, 1), (7, 1), (2, 1)]
        products = await (await client.get(f"{API}/products.json", headers=AUTH)).json()
        assert products["products"][0]["variants"][0]["inventory_quantity"] == 9

    run(scenario)


def test_the_changes_can_be_filtered_and_levels_read_back() -> None:
    async def scenario(client: Client, shop: StandinShop, clock: Clock) -> None:
        items = await seed_socks(client)
        mutation = """mutation($input: InventorySetQuantitiesInput!) {
          inventorySetQuantities(input: $input) {
            inventoryAdjustmentGroup { changes(quantityNames: ["available"]) { name delta } }
            userErrors { code }
          }
        }"""
        variables = set_input(quantity(items["SOCK-L"], 1), ignoreCompareQuantity=True)
        _, answer = await graphql(client, mutation, variables)
        group = answer["data"]["inventorySetQuantities"]["inventoryAdjustmentGroup"]
        assert group["changes"] == [{"name": "available", "delta": -6}]
        query = """query($id: ID!, $location: ID!) {
          inventoryItem(id: $id) {
            sku
            inventoryLevel(locationId: $location) {
              quantities(names: ["available", "on_hand", "committed"]) { name quantity }
            }
          }
        }"""
        _, answer = await graphql(
            client, query, {"id": item_gid(items["SOCK-L"]), "location": LOCATION_GID}
        )
        item = answer["data"]["inventoryItem"]
        assert item["sku"] == "SOCK-L"
        assert item["inventoryLevel"]["quantities"] == [
            {"name": "available", "quantity": 1},
            {"name": "on_hand", "quantity": 1},
            {"name": "committed", "quantity": 0},
        ]
        assert answer["extensions"]["cost"]["requestedQueryCost"] == 3  # three objects

    run(scenario)


USER_ERRORS = [
    ("INVALID_NAME", {"name": "committed"}, None, ["input", "name"]),
    ("INVALID_REASON", {"reason": "sync"}, None, ["input", "reason"]),
    ("INVALID_REFERENCE_DOCUMENT", {"referenceDocumentUri": "no scheme"}, None, None),
    ("COMPARE_QUANTITY_REQUIRED", {}, {"compareQuantity": None}, ["compareQuantity"]),
    ("COMPARE_QUANTITY_STALE", {}, {"compareQuantity": 3}, ["compareQuantity"]),
    ("INVALID_INVENTORY_ITEM", {}, {"inventoryItemId": item_gid(1)}, ["inventoryItemId"]),
    ("INVALID_INVENTORY_ITEM", {}, {"inventoryItemId": "42"}, ["inventoryItemId"]),
    ("INVALID_LOCATION", {}, {"locationId": "gid://shopify/Location/1"}, ["locationId"]),
    ("INVALID_QUANTITY_NEGATIVE", {}, {"quantity": -1}, ["quantity"]),
    ("INVALID_QUANTITY_TOO_HIGH", {}, {"quantity": 1_000_000_001}, ["quantity"]),
]


@pytest.mark.parametrize(("code", "overrides", "second", "field"), USER_ERRORS)
def test_a_user_error_names_its_field_and_nothing_is_applied(
    code: str, overrides: dict[str, Any], second: dict[str, Any] | None, field: list[str] | None
) -> None:
    async def scenario(client: Client, shop: StandinShop, clock: Clock) -> None:
        items = await seed_socks(client)
        first = quantity(items["SOCK-S"], 9, compare=4)  # fine on its own
        other = {**quantity(items["SOCK-L"], 5, compare=7), **(second or {})}
        status, answer = await graphql(client, SET_QUANTITIES, set_input(first, other, **overrides))
        assert status == 200, answer
        payload = answer["data"]["inventorySetQuantities"]
        assert payload["inventoryAdjustmentGroup"] is None
        (error,) = payload["userErrors"]
        expected = field if second is None else ["input", "quantities", "1", *(field or [])]
        if code == "INVALID_REFERENCE_DOCUMENT":
            expected = ["input", "referenceDocumentUri"]
        assert (error["code"], error["field"]) == (code, expected)
        assert error["message"]
        held = await levels(client)
        assert [(held[s]["available"], held[s]["sets"]) for s in ("SOCK-S", "SOCK-L")] == [
            (4, 0),
            (7, 0),
        ]

    run(scenario)


def test_the_same_item_and_location_twice_is_refused() -> None:
    async def scenario(client: Client, shop: StandinShop, clock: Clock) -> None:
        items = await seed_socks(client)
        twice = set_input(quantity(items["SHOE-1"], 1, 0), quantity(items["SHOE-1"], 2, 0))
        _, answer = await graphql(client, SET_QUANTITIES, twice)
        payload = answer["data"]["inventorySetQuantities"]
        assert payload["inventoryAdjustmentGroup"] is None
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
            ("NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR", ["input", "quantities", "1"])
        ]
        assert (await levels(client))["SHOE-1"]["sets"] == 0

    run(scenario)


def test_parse_validation_and_variable_errors_answer_errors_without_data() -> None:
    async def scenario(client: Client, shop: StandinShop, clock: Clock) -> None:
        items = await seed_socks(client)
        status, answer = await graphql(client, "query { shop { id ")
        assert status == 200 and set(answer) == {"errors"}
        (error,) = answer["errors"]
        assert error["message"].startswith("Syntax Error") and error["locations"]
        status, answer = await graphql(client, "{ shop { id currencyCode } }")
        assert status == 200 and set(answer) == {"errors"}
        assert "currencyCode" in answer["errors"][0]["message"]
        assert answer["errors"][0]["locations"] == [{"line": 1, "column": 13}]
        missing = set_input(quantity(items["SOCK-S"], 1, 4))
        del missing["input"]["reason"]
        status, answer = await graphql(client, SET_QUANTITIES, missing)
        assert status == 200 and set(answer) == {"errors"}
        assert "reason" in answer["errors"][0]["message"]
        assert (await levels(client))["SOCK-S"]["sets"] == 0
        _, answer = await graphql(client, "{ shop { id } }")
        assert answer["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 1999
        not_json = {**AUTH, "Content-Type": "application/json"}
        for response in (
            await client.post(GRAPHQL, json={"variables": {}}, headers=AUTH),
            await client.post(GRAPHQL, data="{ shop { id } }", headers=not_json),
        ):
            assert (response.status, await response.json()) == (
                400,
                {"errors": {"query": "Required parameter missing or invalid"}},
            )

    run(scenario)


def test_every_answer_carries_its_cost_and_the_bucket_restores() -> None:
    async def scenario(client: Client, shop: StandinShop, clock: Clock) -> None:
        items = await seed_socks(client)
        _, answer = await graphql(client, "{ shop { id name myshopifyDomain } }")
        assert answer["data"]["shop"] == {
            "id": "gid://shopify/Shop/548380009",
            "name": "Stand-in Shop",
            "myshopifyDomain": "standin-shop.myshopify.com",
        }
        assert answer["extensions"]["cost"] == {
            "requestedQueryCost": 1,
            "actualQueryCost": 1,
            "throttleStatus": {
                "maximumAvailable": 2000.0,
                "currentlyAvailable": 1999,
                "restoreRate": 100.0,
            },
        }
        variables = set_input(quantity(items["SOCK-S"], 1, 4))
        _, answer = await graphql(client, SET_QUANTITIES, variables)
        cost = answer["extensions"]["cost"]
        assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (10, 10)
        assert cost["throttleStatus"]["currentlyAvailable"] == 1989
        clock.advance(0.05)
        _, answer = await graphql(client, "{ location { id name isActive } }")
        assert answer["data"]["location"] == {
            "id": LOCATION_GID,
            "name": "Shop location",
            "isActive": True,
        }
        assert answer["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 1993

    run(scenario)


# The whole answer to a mutation (cost 10) with 5 of 25 points left, restoring 10 a second.
THROTTLED_WITH_5_OF_25 = {
    "errors": [
        {
            "message": "Throttled",
            "extensions": {
                "code": "THROTTLED",
                "documentation": "https://shopify.dev/api/usage/rate-limits",
            },
        }
    ],
    "extensions": {
        "cost": {
            "requestedQueryCost": 10,
            "actualQueryCost": None,
            "throttleStatus": {
                "maximumAvailable": 25.0,
                "currentlyAvailable": 5,
                "restoreRate": 10.0,
            },
        }
    },
}


def test_an_unaffordable_request_is_throttled_until_the_bucket_restores() -> None:
    async def scenario(client: Client, shop: StandinShop, clock: Clock) -> None:
        items = await seed_socks(client)
        limits = {"maximum_available": 25, "restore_rate": 10}
        assert (await client.post(f"{CONTROL}/graphql-throttle", json=limits)).status == 200
        variables = set_input(quantity(items["SHOE-1"], 3), ignoreCompareQuantity=True)
        for left in (15, 5):
            _, answer = await graphql(client, SET_QUANTITIES, variables)
            assert answer["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == left
        status, answer = await graphql(client, SET_QUANTITIES, variables)
        assert status == 200
        assert answer == THROTTLED_WITH_5_OF_25
        assert (await levels(client))["SHOE-1"]["sets"] == 2
        clock.advance(0.4)  # 9 points: still short
        assert "data" not in (await graphql(client, SET_QUANTITIES, variables))[1]
        clock.advance(0.1)
        _, answer = await graphql(client, SET_QUANTITIES, variables)
        assert answer["data"]["inventorySetQuantities"]["userErrors"] == []
        assert answer["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 0
        assert (await levels(client))["SHOE-1"]["sets"] == 3

    run(scenario)


def test_graphql_passes_the_token_and_version_gate_but_not_the_rest_bucket() -> None:
    async def scenario(client: Client, shop: StandinShop, clock: Clock) -> None:
        for headers in ({}, {"X-Shopify-Access-Token": "shpat_other"}):
            response = await client.post(
                GRAPHQL, json={"query": "{ shop { id } }"}, headers=headers
            )
            assert response.status == 401
            assert await response.json() == {
                "errors": "[API] Invalid API key or access token "
                "(unrecognized login or wrong password)"
            }
        response = await client.post(
            "/admin/api/2024-10/graphql.json", json={"query": "{ shop { id } }"}, headers=AUTH
        )
        assert (response.status, await response.json()) == (404, {"errors": "Not Found"})
        assert (
            await client.post(f"{CONTROL}/throttle", json={"bucket_size": 1, "leak_rate": 1})
        ).status == 200
        for _ in range(3):
            response = await client.post(GRAPHQL, json={"query": "{ shop { id } }"}, headers=AUTH)
            assert response.status == 200
            assert "X-Shopify-Shop-Api-Call-Limit" not in response.headers
            assert response.headers["X-Shopify-API-Version"] == "2025-01"
        response = await client.get(f"{API}/shop.json", headers=AUTH)
        assert response.headers["X-Shopify-Shop-Api-Call-Limit"] == "1/1"

    run(scenario)


def test_faults_answer_graphql_calls_and_every_call_is_recorded_with_its_body() -> None:
    async def scenario(client: Client, shop: StandinShop, clock: Clock) -> None:
        fault = {"status": 503, "path_contains": "graphql.json"}
        assert (await client.post(f"{CONTROL}/faults", json=fault)).status == 201
        assert (await graphql(client, "{ shop { id } }"))[0] == 503
        assert (await graphql(client, "{ shop { id } }"))[0] == 200
        await client.post(f"{CONTROL}/faults", json={"status": 500, "path_contains": "graphql"})
        status, answer = await graphql(client, "{ shop { id } }")
        assert (status, answer) == (500, {"errors": "An unexpected error occurred"})
        response = await client.post(
            GRAPHQL,
            data="{ shop { name } }",
            headers={**AUTH, "Content-Type": "application/graphql"},
        )
        assert (await response.json())["data"] == {"shop": {"name": "Stand-in Shop"}}
        calls = (await (await client.get(f"{CONTROL}/calls")).json())["calls"]
        assert [(c["method"], c["path"], c["status"]) for c in calls] == [
            ("POST", GRAPHQL, 503),
            ("POST", GRAPHQL, 200),
            ("POST", GRAPHQL, 500),
            ("POST", GRAPHQL, 200),
        ]
        assert calls[1]["body"] == {"query": "{ shop { id } }"}
        assert calls[3]["body"] == "{ shop { name } }"

    run(scenario)
