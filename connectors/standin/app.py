"""One aiohttp application serving both stand-ins, and a helper that runs it on a free port.

``create_standin_app(shop=..., spapi=...)`` mounts the Shopify REST Admin API
(``/admin/api/...``), the SP-API (``/orders/v0/...``, ``/feeds/2021-06-30/...``, the presigned
``/_standin/s3/...``) and both control APIs (``/_standin/shopify/...``,
``/_standin/spapi/...``) on one app; either stand-in defaults to a fresh one. Pass your own
to set tokens, limits, clocks or a webhook target, and to reach their state from a test.

``running_standin(...)`` serves that app on 127.0.0.1 (a free port unless one is given) for
the length of an ``async with`` and yields the base URL, e.g. ``http://127.0.0.1:41234``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from connectors.standin import shopify_app, spapi_app
from connectors.standin.shopify import StandinShop
from connectors.standin.spapi import StandinSpApi

MAX_BODY = 10 * 1024**2  # feed documents are uploaded whole; S3 takes far more, 10 MiB will do


def create_standin_app(
    shop: StandinShop | None = None, spapi: StandinSpApi | None = None
) -> web.Application:
    shop = shop if shop is not None else StandinShop()
    spapi = spapi if spapi is not None else StandinSpApi()
    app = web.Application(client_max_size=MAX_BODY)
    # Control routes first: the Shopify API's catch-all must not shadow anything after it.
    app.add_routes(shopify_app.control_routes(shop))
    app.add_routes(spapi_app.control_routes(spapi))
    app.add_routes(spapi_app.api_routes(spapi))
    app.add_routes(shopify_app.api_routes(shop))
    return app


@contextlib.asynccontextmanager
async def running_standin(
    shop: StandinShop | None = None,
    spapi: StandinSpApi | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
) -> AsyncIterator[str]:
    """Serve the stand-ins until the block ends; yields the base URL."""
    runner = web.AppRunner(create_standin_app(shop, spapi))
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        yield f"http://{bound_host}:{bound_port}"
    finally:
        await runner.cleanup()
