"""The network as the topics hold it now, read once: what ``dom rules dry-run`` routes on.

The same ``NetworkView`` the workers keep up to date is filled from the compacted topics
(locations, products, availability, rules, channel policies), and an in-memory
:class:`Simulation` routes on it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from config.settings import Settings
from dom.topic_reader import latest_by_key, read_to_end
from schemas import topics as registry
from schemas.codec import Codec, DecodeError
from schemas.models import OrderPlaced
from streams.core.routing.model import RoutingPolicy, ShortfallPolicy
from streams.core.rules.ruleset import RuleSet
from streams.core.saga.context import SagaContext
from streams.core.saga.simulate import Simulation, inventory_from
from streams.order_stage import carton_catalogue
from streams.views import NetworkView

SNAPSHOT_TOPICS = (
    registry.LOCATIONS,
    registry.PRODUCTS,
    registry.AVAILABILITY,
    registry.RULES,
    registry.CHANNELS,
)


def _codec(settings: Settings) -> Codec:
    return Codec.from_url(settings.schema_registry_url, **(settings.schema_registry_config() or {}))


def network_view(settings: Settings) -> NetworkView:
    """Locations, products, availability, live rules and channel policies, as compaction would
    keep them."""
    view = NetworkView()
    codec = _codec(settings)
    for topic in SNAPSHOT_TOPICS:
        for value in latest_by_key(read_to_end(settings, topic.name)).values():
            if value is None:
                continue
            try:
                view.apply(codec.decode(value))
            except DecodeError:
                continue  # dead-lettered by the stage that owns the topic
    return view


def simulation(settings: Settings, view: NetworkView, rules: RuleSet) -> Simulation:
    """A fresh in-memory pipeline over the view's stock, routing under ``rules``."""
    ctx = SagaContext(
        locations=view.location_infos(),
        stock=view.stock,
        now=datetime.now(UTC),
        policy=RoutingPolicy(
            max_shipments=settings.max_shipments,
            shortfall=ShortfallPolicy(settings.shortfall_policy),
        ),
        max_attempts=settings.max_routing_attempts,
        rules=rules,
        products=view.products,
        catalogue=carton_catalogue(settings),
        channels=view.channel_plan(),
    )
    return Simulation(inventory_from(view.availability.values()), ctx)


def recent_orders(settings: Settings, count: int) -> list[OrderPlaced]:
    """The last ``count`` orders placed on ``dom.orders.v1``, oldest first."""
    codec = _codec(settings)
    orders: list[OrderPlaced] = []
    for message in read_to_end(settings, registry.ORDERS.name):
        try:
            record = codec.decode(message.value() or b"")
        except DecodeError:
            continue
        if isinstance(record, OrderPlaced):
            orders.append(record)
    orders.sort(key=lambda o: o.placed_at)
    return orders[-count:] if count else []


def load_orders_file(path: Path) -> list[OrderPlaced]:
    """OrderPlaced records as JSON lines or a JSON array; a bad one names its line."""
    text = path.read_text()
    if text.lstrip().startswith("["):
        items = [(n, item) for n, item in enumerate(json.loads(text), start=1)]
    else:
        items = [(n, json.loads(line)) for n, line in enumerate(text.splitlines(), 1) if line]
    orders = []
    for n, item in items:
        try:
            orders.append(OrderPlaced.model_validate(item))
        except ValidationError as error:
            raise ValueError(f"{path}:{n}: not an OrderPlaced: {error}") from None
    return orders
