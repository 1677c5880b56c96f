"""``dom connect``: run the channel connector's HTTP endpoint (web store webhooks, marketplace
documents: orders, cancellations, edits, address changes). `dom.cli` registers the `connect`
command object defined here."""

from __future__ import annotations

import logging

import click

from config.settings import Settings


@click.command("connect")
@click.option("--host", default=None, help="Interface to listen on [default: DOM_CONNECTOR_HOST].")
@click.option(
    "--port", type=int, default=None, help="Port to listen on [default: DOM_CONNECTOR_PORT]."
)
@click.option(
    "--loglevel",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)
@click.pass_context
def connect(ctx: click.Context, host: str | None, port: int | None, loglevel: str) -> None:
    """Receive channel orders and their changes over HTTP and produce them as contract
    events and order actions.

    \b
    Shopify webhooks, signed in X-Shopify-Hmac-Sha256:
      POST /webhooks/shopify/orders-create     orders/create: OrderPlaced
      POST /webhooks/shopify/orders-cancelled  orders/cancelled: OrderCancelled
      POST /webhooks/shopify/orders-edited     orders/edited: CANCEL_LINES
      POST /webhooks/shopify/orders-updated    orders/updated: CANCEL_LINES, CHANGE_SHIP_TO
      POST /webhooks/shopify                   any of these, by X-Shopify-Topic
    Marketplace (SP-API-like) documents, signed in X-Dom-Hmac-Sha256:
      POST /marketplace/orders                 OrderPlaced
      POST /marketplace/cancellations          OrderCancelled (OrderStatus Canceled)
    GET /healthz, GET /stats, GET /metrics.

    Both signatures use DOM_WEBHOOK_SECRET; without it every request is refused with 401.
    Units removed in a Shopify edit are asked to be cancelled once, whichever of
    orders/edited and orders/updated comes first and however often they are re-sent: the
    connector remembers per order what it asked, beside the webhook ids in
    DOM_DATA_DIR/connectors/webhook-ids.sqlite3 (one connector process per file).
    """
    from connectors.web import run_connector  # aiohttp only when the command runs

    settings = ctx.obj if isinstance(ctx.obj, Settings) else Settings()
    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.webhook_secret is None:
        click.echo("warning: DOM_WEBHOOK_SECRET is not set: every request will get 401", err=True)
    host = host or settings.connector_host
    port = port or settings.connector_port
    click.echo(f"connector on http://{host}:{port} (Ctrl-C to stop)")
    run_connector(settings, host=host, port=port)
