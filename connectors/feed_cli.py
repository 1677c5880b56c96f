"""``dom feed``: send channel files to the pipeline, or watch a folder for them.

``dom feed <kind> FILE...`` produces each file's good records, sends its bad rows to the
dead-letter topic, and prints a report: a line of counts per file, then every problem as
``path:line: reason``. Exit status: 0 when every row of every file went through, 1 when any
row was bad or any message was not delivered; the good rows are produced either way, so a
script can tell a clean run from one that needs attention. ``dom feed watch DIR`` runs
until interrupted (see ``connectors.feeds_watch``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from config.settings import Settings
from connectors.feeds import FeedKind, FeedReport, feed_files

_HELP = {
    FeedKind.WHOLESALE: "Partner purchase orders (EDI 850 as CSV), one order per PO.",
    FeedKind.MARKETPLACE: "Marketplace order documents: JSON files, JSON lines, or a folder.",
    FeedKind.POS_SALES: "In-store sales (CSV): stock adjustments at the store, sent packed "
    "(DOM_PACK_STOCK).",
    FeedKind.PICKUP: "Buy-online-pick-up-in-store orders (CSV), one order per order_ref.",
    FeedKind.STOCK: "WMS on-hand counts (CSV): snapshots, and safety stock when given, sent "
    "packed (DOM_PACK_STOCK).",
    FeedKind.LOCATIONS: "Location master (CSV or YAML).",
    FeedKind.PRODUCTS: "Product master (CSV or YAML).",
}


@click.group()
def feed() -> None:
    """Channel files into contract events. Times without a timezone are taken as UTC."""


def _settings(ctx: click.Context) -> Settings:
    found = ctx.find_object(Settings)
    return found if found is not None else Settings()


def _print(report: FeedReport) -> None:
    click.echo(report.summary())


def _feed_command(kind: FeedKind) -> click.Command:
    @click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
    @click.pass_context
    def command(ctx: click.Context, files: tuple[Path, ...]) -> None:
        reports = feed_files(_settings(ctx), kind, files)
        for report in reports:
            _print(report)
        bad = [r for r in reports if not r.ok]
        if bad:
            click.echo(f"{len(bad)} of {len(reports)} file(s) had problems", err=True)
            sys.exit(1)

    command.__doc__ = _HELP[kind]
    return click.command(kind.value)(command)


for _kind in FeedKind:
    feed.add_command(_feed_command(_kind))


@feed.command("watch")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--poll", "poll_seconds", default=5.0, show_default=True, help="Seconds between looks."
)
@click.option(
    "--settle",
    "settle_seconds",
    default=2.0,
    show_default=True,
    help="Seconds a file must be unchanged before it is read.",
)
@click.option("--once", is_flag=True, help="Feed what is there now and exit (1 if any failed).")
@click.pass_context
def feed_watch(
    ctx: click.Context, directory: Path, poll_seconds: float, settle_seconds: float, once: bool
) -> None:
    """Feed files dropped into DIRECTORY/<kind>/, then move them to done/ or failed/."""
    from connectors.feeds_watch import watch

    def told(report: FeedReport, target: Path) -> None:
        _print(report)
        click.echo(f"  -> {target}")

    click.echo(f"watching {directory} (kinds: {', '.join(FeedKind)}); Ctrl-C to stop")
    try:
        reports = watch(
            _settings(ctx),
            directory,
            poll_seconds,
            settle_seconds=settle_seconds,
            once=once,
            on_report=told,
        )
    except KeyboardInterrupt:
        return
    if once and any(not r.ok for r in reports):
        sys.exit(1)
