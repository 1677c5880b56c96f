"""The composition root: ``create_app(settings)`` builds the worker's runtime with every stage.

Nothing connects at import time; a worker is ``dom worker`` (or ``create_app`` in a test).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config.settings import Settings
from schemas import topics as registry
from schemas.codec import Codec
from streams.core.channels.plan import published_channels
from streams.heap import HeapSettler, freeze_heap
from streams.inventory_stage import build_inventory_stage
from streams.kpi_stage import build_kpi_stages
from streams.masters_stage import build_masters_stage
from streams.metrics import PipelineMetrics
from streams.order_stage import build_order_stage
from streams.rules_stage import build_rules_stage
from streams.runtime import Runtime
from streams.views import NetworkView, follow_topics


@dataclass
class Pipeline:
    """The app and the pieces tests and pages reach for."""

    app: Any  # the Faust app (streams.runtime), for the worker to run
    view: NetworkView
    orders: Any
    inventory: Any
    metrics: PipelineMetrics


def create_app(settings: Settings) -> Pipeline:
    codec = Codec.from_url(
        settings.schema_registry_url, **(settings.schema_registry_config() or {})
    )
    metrics = PipelineMetrics()
    health = metrics.health
    runtime = Runtime(settings, codec, metrics)
    view = NetworkView(published_channels(settings.channel_availability_for))
    health.view_ready = view.ready.is_set
    inventory = build_inventory_stage(runtime, settings, codec, view)
    orders = build_order_stage(runtime, settings, codec, view)
    build_rules_stage(runtime, settings, codec, view)
    build_masters_stage(runtime, settings, codec)
    if settings.kpis:
        build_kpi_stages(runtime, settings, codec, view)
    watched = [
        settings.topic(t.name)
        for t in (
            registry.LOCATIONS,
            registry.PRODUCTS,
            registry.AVAILABILITY,
            registry.FULFILLMENT_COMMANDS,
            registry.RULES,
            registry.CHANNELS,
        )
    ]

    @runtime.task
    async def follow_network() -> None:
        with health.task("follow_network"):
            await follow_topics(
                view,
                codec,
                settings.aiokafka_config(),
                watched,
                locations_topic=settings.topic(registry.LOCATIONS.name),
                rules_topic=settings.topic(registry.RULES.name),
                availability_topic=settings.topic(registry.AVAILABILITY.name),
                channels_topic=settings.topic(registry.CHANNELS.name),
                # only today's load counts: never decode every command ever sent
                today_topics=[settings.topic(registry.FULFILLMENT_COMMANDS.name)],
            )

    @runtime.task
    async def settle_heap() -> None:
        with health.task("settle_heap"):
            await view.ready.wait()
            freeze_heap()
            await HeapSettler().run()

    @runtime.task
    async def measure() -> None:
        with health.task("measure"):
            metrics.watch_gc()
            metrics.rules_in_force.set_function(lambda: len(view.rules))
            metrics.rules_refused.set_function(lambda: len(view.rule_errors))
            await runtime.watch_lag_and_tables({"orders": orders, "inventory": inventory})

    runtime.serve_pages(view, orders, health)
    return Pipeline(app=runtime.app, view=view, orders=orders, inventory=inventory, metrics=metrics)
