"""The ``dom`` command line. Each verb lives in its own group; later verbs are added beside them.

Only verbs that work are registered, so ``dom --help`` never advertises a stub.
"""

from __future__ import annotations

import sys
import time

import click

from config.settings import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx: click.Context) -> None:
    """Distributed order management on Kafka. Settings come from DOM_* environment variables."""
    ctx.obj = Settings()


# ---- dom kafka ----------------------------------------------------------------------------------


@main.group()
def kafka() -> None:
    """The local single-node Kafka broker (for when no DOM_KAFKA_BOOTSTRAP cluster is given)."""


@kafka.command("fetch")
@click.pass_obj
def kafka_fetch(settings: Settings) -> None:
    """Fetch the pinned Kafka release's jars from Maven Central into the cache."""
    from dom.kafka_local import fetch_jars, kafka_version

    libs = fetch_jars(settings)
    click.echo(f"Apache Kafka {kafka_version()} jars in {libs}")


@kafka.command("start")
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait for readiness.")
@click.pass_obj
def kafka_start(settings: Settings, timeout: float) -> None:
    """Start the local broker (fetching jars and formatting storage the first time)."""
    from dom.kafka_local import KafkaLauncherError, LocalKafka, kafka_version

    began = time.monotonic()
    try:
        status = LocalKafka(settings).start(timeout=timeout)
    except KafkaLauncherError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"Apache Kafka {kafka_version()} ready at {status.bootstrap} "
        f"(pid {status.pid}, {time.monotonic() - began:.1f}s, data in {status.directory})"
    )


@kafka.command("stop")
@click.pass_obj
def kafka_stop(settings: Settings) -> None:
    """Stop the local broker; its data is kept for the next start."""
    from dom.kafka_local import LocalKafka

    stopped = LocalKafka(settings).stop()
    click.echo("stopped" if stopped else "not running")


@kafka.command("status")
@click.pass_obj
def kafka_status(settings: Settings) -> None:
    """Say whether the local broker runs and answers; exit 1 when it does not."""
    from dom.kafka_local import LocalKafka

    status = LocalKafka(settings).status()
    if status.running:
        state = "ready" if status.reachable else "starting (not answering yet)"
        click.echo(f"running, {state}: {status.bootstrap} pid {status.pid} ({status.directory})")
    else:
        click.echo(f"not running ({status.directory})")
    sys.exit(0 if status.reachable else 1)


# ---- dom topics ---------------------------------------------------------------------------------


@main.group()
def topics() -> None:
    """The contract's topics on the configured cluster."""


@topics.command("create")
@click.pass_obj
def topics_create(settings: Settings) -> None:
    """Create every registry topic and table changelog that is missing (safe to run again)."""
    from dom.admin import create_topics

    for result in create_topics(settings):
        click.echo(f"{result.outcome:8} {result.name} ({result.partitions} partitions)")


@topics.command("list")
@click.pass_obj
def topics_list(settings: Settings) -> None:
    """List the registry: every topic, its key, records and cleanup policy, then the stages'
    table changelogs that `dom topics create` makes too."""
    from schemas.topics import ALL_TOPICS, CHANGELOG_TOPICS

    for topic in ALL_TOPICS + CHANGELOG_TOPICS:
        policy = "compacted" if topic.compacted else "delete"
        records = ", ".join(r.removeprefix("dom.v1.") for r in topic.records) or "original bytes"
        if topic.table is not None:
            records = f"the {topic.table} table (changelog)"
        click.echo(f"{settings.topic(topic.name):34} key={topic.key:12} {policy:9} {records}")


# ---- dom worker ---------------------------------------------------------------------------------


@main.command("worker")
@click.option("--name", help="Worker name (its data directory); default DOM_WORKER_NAME.")
@click.option("--web-port", type=int, help="HTTP port; default DOM_WEB_PORT (6066).")
@click.option(
    "--loglevel",
    default="info",
    show_default=True,
    type=click.Choice(["crit", "error", "warn", "info", "debug"]),
)
@click.pass_obj
def worker(settings: Settings, name: str | None, web_port: int | None, loglevel: str) -> None:
    """Run the pipeline's stages; several workers share the partitions between them."""
    from streams.app import create_app
    from streams.runtime import run_worker

    updates = {k: v for k, v in (("worker_name", name), ("web_port", web_port)) if v}
    settings = settings.model_copy(update=updates)
    run_worker(settings, lambda s: create_app(s).app, loglevel)


def _register() -> None:
    from connectors.cli import connect
    from connectors.demo_cli import demo
    from connectors.feed_cli import feed
    from connectors.standin.cli import standin
    from dom.bench import bench
    from dom.console.cli import console
    from dom.orders_cli import orders
    from dom.report_cli import report
    from dom.rules_cli import rules
    from dom.sync_cli import sync
    from dom.tail import tail
    from dom.users_cli import users

    for command in (rules, orders, tail, connect, feed, demo, console, users, bench, sync, standin):
        main.add_command(command)
    main.add_command(report)
    from dom.channels_cli import channels

    main.add_command(channels)


_register()

if __name__ == "__main__":
    main()
