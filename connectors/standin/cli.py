"""``dom standin``: serve the Shopify and SP-API stand-ins on one port, for the demo and for
trying a client by hand. `dom.cli` registers the `standin` command object defined here."""

from __future__ import annotations

import click


@click.command("standin")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8790, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--shop-token",
    default="shpat_standin",
    show_default=True,
    help="The X-Shopify-Access-Token the shop accepts.",
)
@click.option(
    "--spapi-token",
    default="Atza|standin-access-token",
    show_default=True,
    help="The x-amz-access-token the SP-API accepts.",
)
@click.option("--webhook-url", default=None, help="Where the shop POSTs its webhooks [none].")
@click.option(
    "--webhook-secret",
    envvar="DOM_WEBHOOK_SECRET",
    default=None,
    help="The secret webhooks are signed with [default: DOM_WEBHOOK_SECRET].",
)
@click.option(
    "--bucket-size",
    default=40,
    show_default=True,
    type=click.IntRange(min=1),
    help="Shopify call-limit bucket (Plus: 400).",
)
@click.option(
    "--leak-rate",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0.001),
    help="Shopify bucket leak, requests a second (Plus: 20).",
)
@click.option(
    "--confirm-rate",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0.001),
    help="SP-API confirmShipment usage plan, calls a second (Amazon's default: 2, burst 10).",
)
@click.option("--confirm-burst", default=10, show_default=True, type=click.IntRange(min=1))
def standin(
    host: str,
    port: int,
    shop_token: str,
    spapi_token: str,
    webhook_url: str | None,
    webhook_secret: str | None,
    bucket_size: int,
    leak_rate: float,
    confirm_rate: float,
    confirm_burst: int,
) -> None:
    """Stand-ins for Shopify's Admin API (2025-01, REST and GraphQL) and Amazon's SP-API.

    Shopify under /admin/api/2025-01/ (graphql.json for GraphQL), SP-API under /orders/v0/
    and /feeds/2021-06-30/, their control APIs under /_standin/shopify/ and /_standin/spapi/
    (orders, products, inventory, calls, faults, throttle, graphql-throttle, reset).
    """
    from aiohttp import web  # only when the command runs

    from connectors.standin.app import create_standin_app
    from connectors.standin.shopify import StandinShop, WebhookTarget
    from connectors.standin.spapi import StandinSpApi

    if webhook_url is not None and not webhook_secret:
        raise click.UsageError("--webhook-url needs --webhook-secret (or DOM_WEBHOOK_SECRET)")
    target = WebhookTarget(webhook_url, webhook_secret) if webhook_url and webhook_secret else None
    shop = StandinShop(
        access_token=shop_token, bucket_size=bucket_size, leak_rate=leak_rate, webhook=target
    )
    spapi = StandinSpApi(access_token=spapi_token)
    spapi.throttle("confirmShipment", confirm_rate, confirm_burst)
    click.echo(f"stand-ins on http://{host}:{port} (Ctrl-C to stop)")
    web.run_app(create_standin_app(shop, spapi), host=host, port=port, print=None)
