"""Local stand-ins for the sales channels' APIs that channel sync calls: a Shopify shop
speaking the Admin API (2025-01: REST, and GraphQL for inventory) and Amazon's Selling
Partner API (Orders v0, the order acknowledgement feed through Feeds 2021-06-30).

They answer as the providers document: paths, status codes, error bodies, rate-limit
headers; each request is checked field by field and refused as the provider would refuse
it. Tests and the demo run against them; a control API under ``/_standin/`` creates orders
and products, shows what the client did and what the shop holds, arms faults and changes
the throttles.

Modules: `app` (one aiohttp app for both, and a runner on a free port), `shopify` and
`shopify_app` (the shop and its routes, with `shopify_orders`, `shopify_actions`,
`shopify_models`; the catalogue in `shopify_inventory`, `shopify_inventory_set`,
`shopify_catalog`, `shopify_catalog_control`; GraphQL in `shopify_graphql`,
`shopify_graphql_schema`, `shopify_graphql_objects`), `spapi` and `spapi_app` (with
`spapi_orders`, `spapi_feeds`, `spapi_ack`), `ratelimit` (leaky, cost and token buckets),
`recorder` and `control` (call log, faults, control routes), `cli` (the ``standin``
command).

Nothing is imported here: the ``standin`` command's module stays cheap to import until it
runs (aiohttp loads then).
"""
