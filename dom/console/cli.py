"""``dom console``: serve the operators' web console.

Its own options read ``DOM_CONSOLE_*`` variables until they join :class:`config.settings.Settings`:
``--workers`` (``DOM_CONSOLE_WORKERS``, default the one worker of ``DOM_WEB_HOST`` and
``DOM_WEB_PORT``), ``--host``/``--port`` (``DOM_CONSOLE_HOST``/``DOM_CONSOLE_PORT``, 8090)
and ``--grafana-url`` (``DOM_CONSOLE_GRAFANA_URL``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import click

from config.settings import Settings

DEFAULT_GRAFANA = "http://127.0.0.1:3000/d/dom-pipeline"


def worker_urls(raw: str | None, settings: Settings) -> list[str]:
    """Base URLs from a comma-separated list; the settings' worker when none is given."""
    given = raw or f"http://{settings.web_host}:{settings.web_port}"
    urls = [u.strip().rstrip("/") for u in given.split(",") if u.strip()]
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise click.BadParameter(f"{url!r} is not a worker base URL like http://host:6066")
    if not urls:
        raise click.BadParameter("name at least one worker")
    return urls


@click.command("console")
@click.option(
    "--workers",
    envvar="DOM_CONSOLE_WORKERS",
    help="Worker base URLs, comma-separated [default: http://DOM_WEB_HOST:DOM_WEB_PORT].",
)
@click.option("--host", envvar="DOM_CONSOLE_HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="DOM_CONSOLE_PORT", type=int, default=8090, show_default=True)
@click.option(
    "--grafana-url",
    envvar="DOM_CONSOLE_GRAFANA_URL",
    default=DEFAULT_GRAFANA,
    show_default=True,
    help="The Grafana dashboard the Health tab links to.",
)
@click.option(
    "--lookback",
    type=float,
    default=60.0,
    show_default=True,
    help="Minutes of recent outcomes and commands to load at start.",
)
@click.pass_obj
def console(
    settings: Settings,
    workers: str | None,
    host: str,
    port: int,
    grafana_url: str,
    lookback: float,
) -> None:
    """The operators' web console: inventory, orders, rules, channels, reports and health."""
    from aiohttp import web

    from dom.console.app import create_app
    from dom.console.assets import fetch_chart_library
    from dom.processes import LaunchError

    try:
        fetch_chart_library(settings)  # once; make run and make test fetch it beforehand
    except LaunchError as error:
        click.echo(f"console: no charts, the Reports view shows tables only: {error}", err=True)
    urls = worker_urls(workers, settings)
    app = create_app(settings, urls, grafana_url=grafana_url or None, lookback=lookback * 60)
    click.echo(f"DOM console on http://{host}:{port}/ (workers: {', '.join(urls)})")
    web.run_app(app, host=host, port=port, print=None, access_log=None)
