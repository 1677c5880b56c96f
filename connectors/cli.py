"""``dom connect``: run the channel connector's HTTP endpoint (web store webhooks, marketplace
documents). `dom.cli` registers the `connect` command object defined here."""

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
    """Receive channel orders over HTTP and produce them as contract events.

    POST /webhooks/shopify/orders-create (signed X-Shopify-Hmac-Sha256), POST
    /marketplace/orders (signed X-Dom-Hmac-Sha256), GET /healthz, GET /stats. Both
    signatures use DOM_WEBHOOK_SECRET; without it every order is refused with 401.
    """
    from connectors.web import run_connector  # aiohttp only when the command runs

    settings = ctx.obj if isinstance(ctx.obj, Settings) else Settings()
    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.webhook_secret is None:
        click.echo("warning: DOM_WEBHOOK_SECRET is not set: every order will get 401", err=True)
    host = host or settings.connector_host
    port = port or settings.connector_port
    click.echo(f"connector on http://{host}:{port} (Ctrl-C to stop)")
    run_connector(settings, host=host, port=port)
