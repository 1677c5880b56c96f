"""What the saga reads besides an order's own state: the network, stock, policies and the
clock (:class:`SagaContext`), and the order backorders are served in (:class:`BackorderPolicy`).

Its own module, below every saga module: each of them takes a context (and the actions the
saga's routing offers them, :class:`Routing`), and none has to import the saga or the actions
(or hide the import behind ``TYPE_CHECKING``) to name them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from schemas.enums import LabelFormat, ServiceLevel
from schemas.internal import SkuAction
from schemas.models import Location, Message, Product
from streams.core.channels.plan import ChannelPlan
from streams.core.packing.cartons import BoxCatalogue, default_catalogue
from streams.core.routing.model import LocationInfo, RoutingPolicy
from streams.core.rules.ruleset import RuleSet
from streams.core.saga.order_checks import OrderLimits
from streams.core.saga.state import OrderState, SagaShipment

StockLookup = Callable[[str], Mapping[str, int]]
Outputs = list[Message]
SERVICE_RANK = {ServiceLevel.NEXT_DAY: 0, ServiceLevel.EXPRESS: 1, ServiceLevel.STANDARD: 2}
DEFAULT_TIERS = ("PLATINUM", "GOLD", "SILVER", "BRONZE")


@dataclass(frozen=True)
class BackorderPolicy:
    """The order waiting orders are served in (``DOM_BACKORDER_PRIORITY``), then placed_at."""

    priority: str = "placed_at"
    tiers: tuple[str, ...] = DEFAULT_TIERS

    def rank(self, state: OrderState) -> int:
        """0 first. Tiers compare without case ("gold" is "GOLD"); an unlisted one comes last."""
        order = state.order
        if self.priority == "service_level":
            level = ServiceLevel(state.service_level or order.service_level)
            return SERVICE_RANK.get(level, len(SERVICE_RANK))
        if self.priority == "tier":
            tier = (order.customer.loyalty_tier or "").strip().upper()
            return self.tiers.index(tier) if tier in self.tiers else len(self.tiers)
        return 0

    @classmethod
    def of(cls, priority: str, tiers: str) -> BackorderPolicy:
        names = tuple(t.strip().upper() for t in tiers.split(",") if t.strip())
        return cls(priority=priority, tiers=names)


@dataclass(frozen=True)
class SagaContext:
    """What the saga reads besides its own state: the network, stock, policy and the clock.

    ``location_records`` are the full location records (addresses, for return labels);
    ``channels`` the channel policies, which limit the locations an order's channel may use.
    """

    locations: Sequence[LocationInfo]
    stock: StockLookup  # sku -> location_id -> available, as the worker's view has it
    now: datetime
    policy: RoutingPolicy = field(default_factory=RoutingPolicy)
    max_attempts: int = 3
    rules: RuleSet = field(default_factory=RuleSet)
    products: Mapping[str, Product] = field(default_factory=dict)
    catalogue: BoxCatalogue = field(default_factory=default_catalogue)
    location_records: Mapping[str, Location] = field(default_factory=dict)
    label_format: LabelFormat = LabelFormat.ZPL
    limits: OrderLimits = field(default_factory=OrderLimits)
    backorders: BackorderPolicy = field(default_factory=BackorderPolicy)
    channels: ChannelPlan = field(default_factory=ChannelPlan)
    read_at: tuple[str, int, int] | None = None  # where the input was read (partition, offset,
    # time in ms): its replies are dropped once a later batch of that partition makes it done
    promised: StockLookup | None = None  # sku -> location_id -> units this worker promised
    # other orders that ``stock`` may not show yet (streams/core/routing/promised.py)
    plan_hold_ids: bool = False  # hold each new shipment under its plan's own id (``hold_id``),
    # so that two plans of one attempt never share a hold (DOM_PLAN_HOLD_IDS)


StartAttempt = Callable[..., Outputs]
"""(state, lines, reason, ctx, quiet=False): route ``lines`` anew (see the saga)."""
SkuCommands = Callable[[OrderState, Sequence[SagaShipment], SkuAction, SagaContext], Outputs]


class Routing:
    """What actions need of the saga: start a routing attempt, and command the sku owners."""

    def __init__(self, start: StartAttempt, sku_commands: SkuCommands) -> None:
        self.start = start
        self.sku_commands = sku_commands
