"""What routing sees of an order in the saga: the request built from its state (limited to the
locations its sales channel's policy allows), and the stock view overlaid with the fresher
figures that reservation results carried."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from streams.core.channels.plan import ChannelPlan
from streams.core.routing.geo import Destination
from streams.core.routing.model import FulfillmentMethod, OrderLine, RoutingRequest
from streams.core.saga.state import Line, OrderState


def merge_lines(lines: Sequence[Line]) -> list[Line]:
    """One line per line id (routing refuses repeats), quantities added up."""
    merged: dict[str, Line] = {}
    for line in lines:
        before = merged.get(line.line_id)
        quantity = line.quantity + (before.quantity if before else 0)
        merged[line.line_id] = Line(line_id=line.line_id, sku=line.sku, quantity=quantity)
    return list(merged.values())


def routing_request(
    state: OrderState, lines: list[Line], channels: ChannelPlan | None = None
) -> RoutingRequest:
    """The request that routes ``lines`` of the order; ``channels`` limits its sources to the
    locations the order's channel may be served from."""
    order = state.order
    channel = order.channel.value
    ship_to = order.ship_to
    destination = (
        None
        if ship_to is None
        else Destination(
            lat=ship_to.lat,
            lon=ship_to.lon,
            country=ship_to.country,
            region=ship_to.region,
            postal_code=ship_to.postal_code,
        )
    )
    return RoutingRequest(
        order_id=order.order_id,
        method=FulfillmentMethod(order.fulfillment_method.value),
        lines=tuple(OrderLine(line_id=x.line_id, sku=x.sku, quantity=x.quantity) for x in lines),
        ship_to=destination,
        pickup_location_id=order.pickup_location_id,
        excluded_locations=frozenset(state.excluded_locations),
        channel=channel,
        channel_locations=channels.locations_for(channel) if channels is not None else None,
    )


class StockView(Mapping[str, Mapping[str, int]]):
    """The worker's view of availability, overlaid with the fresher numbers results carried
    (a confirmed reservation's result carries only the locations it holds at).

    ``promised`` (see :mod:`streams.core.routing.promised`), when given, says what the worker
    promised other orders that the view does not show yet; it is taken off the view's figures
    (not off the fresher ones, which the owner figured after those promises it had applied)."""

    def __init__(
        self,
        state: OrderState,
        lookup: Callable[[str], Mapping[str, int]],
        promised: Callable[[str], Mapping[str, int]] | None = None,
    ) -> None:
        self._fresh = state.fresh_stock
        self._lookup = lookup
        self._promised = promised

    def __getitem__(self, sku: str) -> Mapping[str, int]:
        fresh = self._fresh.get(sku)
        seen = self._lookup(sku)
        taken = self._promised(sku) if self._promised is not None else None
        if taken:
            seen = {loc: max(0, units - taken.get(loc, 0)) for loc, units in seen.items()}
        return seen if fresh is None else {**seen, **fresh}

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._fresh)

    def __len__(self) -> int:
        return len(self._fresh)
