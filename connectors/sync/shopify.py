"""Shipments and cancels told to Shopify, through its REST Admin API (version pinned in
``DOM_SHOPIFY_API_VERSION``, default 2025-01).

A shipment is fulfilled the way the API requires since 2023: read the order's fulfillment
orders (``GET orders/{id}/fulfillment_orders.json``), then create a fulfillment over the
fulfillment order line items that carry the shipment's lines (``POST fulfillments.json``), with
its tracking; one per Shopify location, as the API takes fulfillment orders of one location per
call. A split order is fulfilled shipment by shipment: each call names only its lines and units.

Mapping (learned, nothing to configure): our order lines are Shopify's line items (the connector
made ``line_id`` from the line item id), and a fulfillment order's line item names the line
item it carries, so no SKU mapping is needed. Fulfillment orders are fulfilled at the location
Shopify assigned them; which of our locations shipped is ours to know, not the store's.

Made once: units no fulfillment order has left to fulfil are skipped and said (an earlier
call, or the merchant by hand, fulfilled them), so a repeated shipment of whole lines finds
nothing to do; unless the order is cancelled in Shopify (the location shipped before our
cancel reached it): that call FAILS, saying so, for a person to refund or reach the customer.
A shipment of part of a line could find another shipment's units: then the order's
fulfillments are read first, and what the live ones with the shipment's tracking number carry
is not fulfilled again. Two calls per shipment, three for a split line. A cancel reads the
order first: an order Shopify already cancelled (the merchant did it there) is done. Lines
cancelled here are a refund that cancels their units (no money moves), its note naming the
call, so a repeat finds it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from connectors.sync.calls import Done
from connectors.sync.http import ChannelHttp, GiveUp
from schemas.channels import ChannelCall
from schemas.enums import ChannelCallKind
from schemas.orders import ShipmentLine

OPEN_STATUSES = frozenset({"open", "in_progress"})
"""Fulfillment order statuses that can still be fulfilled (the API refuses the others)."""
DEAD_FULFILLMENTS = frozenset({"cancelled", "error", "failure"})


@dataclass
class FulfillmentPlan:
    """Fulfillment order line items to fulfil, by Shopify location (one fulfillment each: the
    API takes fulfillment orders of one location per call), and what was skipped."""

    by_location: dict[int, dict[int, list[dict[str, int]]]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def add(self, fulfillment_order: dict[str, Any], item_id: int, quantity: int) -> None:
        location = int(fulfillment_order.get("assigned_location_id") or 0)
        by_order = self.by_location.setdefault(location, {})
        by_order.setdefault(int(fulfillment_order["id"]), []).append(
            {"id": item_id, "quantity": quantity}
        )

    def bodies(self) -> list[list[dict[str, Any]]]:
        """``line_items_by_fulfillment_order`` of each fulfillment to create."""
        return [
            [
                {"fulfillment_order_id": fo_id, "fulfillment_order_line_items": items}
                for fo_id, items in by_order.items()
            ]
            for by_order in self.by_location.values()
        ]


def plan_fulfillment(
    fulfillment_orders: list[dict[str, Any]], wanted: dict[str, int], order_ref: str
) -> FulfillmentPlan:
    """Which fulfillment order line items carry ``wanted`` (units by line item id); a line
    the order does not have is `GiveUp` (our order and Shopify's disagree: no retry mends it)."""
    plan = FulfillmentPlan()
    for line_id, quantity in wanted.items():
        items = [
            (fo, item)
            for fo in fulfillment_orders
            for item in fo.get("line_items", [])
            if str(item.get("line_item_id")) == line_id
        ]
        if not items:
            raise GiveUp(f"line {line_id} is not a line item of Shopify order {order_ref}")
        need = quantity
        for fo, item in items:
            if fo.get("status") not in OPEN_STATUSES or need == 0:
                continue
            take = min(need, int(item.get("fulfillable_quantity", 0)))
            if take > 0:
                plan.add(fo, int(item["id"]), take)
                need -= take
        if need:
            plan.skipped.append(f"{need} of line {line_id} already fulfilled or not fulfillable")
    return plan


def units_by_line(lines: tuple[ShipmentLine, ...]) -> dict[str, int]:
    wanted: dict[str, int] = defaultdict(int)
    for line in lines:
        wanted[line.line_id] += line.quantity
    return dict(wanted)


def _part_of_a_line(wanted: dict[str, int], fulfillment_orders: list[dict[str, Any]]) -> bool:
    """Whether the shipment carries only part of one of its lines. Only then can a repeat
    find units left to fulfil (another shipment's), and the fulfillments must be read to
    tell ours from theirs; a shipment of whole lines finds nothing left on a repeat."""
    ordered: dict[str, int] = defaultdict(int)
    for fo in fulfillment_orders:
        for item in fo.get("line_items", []):
            ordered[str(item.get("line_item_id"))] += int(item.get("quantity", 0))
    return any(units < ordered.get(line_id, 0) for line_id, units in wanted.items())


def still_to_fulfil(
    wanted: dict[str, int], fulfillments: list[dict[str, Any]], tracking_number: str
) -> dict[str, int]:
    """``wanted`` less what live fulfillments with our tracking number carry already: a
    tracking number is one parcel's, so those fulfillments are this shipment's, made by an
    earlier attempt whose record was lost (or by a redelivered status)."""
    left = dict(wanted)
    for made in fulfillments:
        numbers = made.get("tracking_numbers") or [made.get("tracking_number")]
        if tracking_number not in numbers or made.get("status") in DEAD_FULFILLMENTS:
            continue
        for item in made.get("line_items", []):
            line_id = str(item.get("id"))
            if line_id in left:
                left[line_id] = max(0, left[line_id] - int(item.get("quantity", 0)))
    return {line_id: units for line_id, units in left.items() if units}


def _line_locations(fulfillment_orders: list[dict[str, Any]]) -> dict[str, int]:
    """The location of each line item's fulfillment order, an open one first."""
    where: dict[str, int] = {}
    ranked = sorted(fulfillment_orders, key=lambda fo: fo.get("status") not in OPEN_STATUSES)
    for fo in ranked:
        for item in fo.get("line_items", []):
            where.setdefault(
                str(item.get("line_item_id")), int(fo.get("assigned_location_id") or 0)
            )
    return where


def cancel_reason(reason: str | None) -> str:
    """Shopify's cancel reason (customer, inventory, fraud, declined, other) for ours."""
    text = (reason or "").lower()
    if "backorder" in text or "stock" in text:
        return "inventory"
    if "fraud" in text:
        return "fraud"
    return "other"


class ShopifySync:
    """Makes a `ChannelCall` happen in one shop."""

    channel = "shopify"

    def __init__(self, http: ChannelHttp, api_version: str) -> None:
        self.http = http
        self.prefix = f"/admin/api/{api_version}/"

    async def perform(self, call: ChannelCall) -> Done:
        if call.kind == ChannelCallKind.FULFIL:
            return await self.fulfil(call)
        return await self.cancel(call)

    async def fulfil(self, call: ChannelCall) -> Done:
        order = call.channel_order_ref
        found = await self._get(
            f"orders/{order}/fulfillment_orders.json", "fulfillment_orders", order
        )
        fulfillment_orders = found.get("fulfillment_orders", [])
        wanted = units_by_line(call.lines)
        if call.tracking_number and _part_of_a_line(wanted, fulfillment_orders):
            made = await self._get(f"orders/{order}/fulfillments.json", "fulfillments", order)
            wanted = still_to_fulfil(wanted, made.get("fulfillments", []), call.tracking_number)
            if not wanted:
                return Done(f"already fulfilled with tracking {call.tracking_number}")
        plan = plan_fulfillment(fulfillment_orders, wanted, order)
        if not plan.by_location:
            await self._not_cancelled(call)
            return Done("nothing left to fulfil: " + "; ".join(plan.skipped))
        made_ids = []
        for by_order in plan.bodies():
            answer = await self.http.call(
                "POST",
                self.prefix + "fulfillments.json",
                "create_fulfillment",
                body=self._body(call, by_order),
            )
            made_ids.append(str((answer.body or {}).get("fulfillment", {}).get("id")))
        note = f"; {'; '.join(plan.skipped)}" if plan.skipped else ""
        return Done(f"fulfillment {', '.join(made_ids)} created{note}", ",".join(made_ids))

    def _body(self, call: ChannelCall, by_order: list[dict[str, Any]]) -> dict[str, Any]:
        fulfillment: dict[str, Any] = {
            "line_items_by_fulfillment_order": by_order,
            "notify_customer": True,
        }
        if call.tracking_number:
            tracking = {"number": call.tracking_number}
            if call.carrier:
                tracking["company"] = call.carrier
            fulfillment["tracking_info"] = tracking
        return {"fulfillment": fulfillment}

    async def cancel(self, call: ChannelCall) -> Done:
        if call.lines:
            return await self.cancel_lines(call)
        order = call.channel_order_ref
        found = await self._get(f"orders/{order}.json", "order", order)
        if (found.get("order") or {}).get("cancelled_at"):
            return Done("already cancelled in Shopify", order)
        await self.http.call(
            "POST",
            self.prefix + f"orders/{order}/cancel.json",
            "cancel_order",
            body={"reason": cancel_reason(call.reason), "email": True},
        )
        return Done("order cancelled", order)

    async def cancel_lines(self, call: ChannelCall) -> Done:
        """Units of some lines cancelled: a refund that cancels them (``restock_type``
        ``cancel``, at the location of the fulfillment order holding them). It moves no money:
        the merchant refunds what Shopify then shows as owed. The refund's note carries the
        call id, so a repeat finds it and makes no second one."""
        order = call.channel_order_ref
        marker = f"[dom {call.call_id}]"
        made = await self._get(f"orders/{order}/refunds.json", "refunds", order)
        if any(marker in (r.get("note") or "") for r in made.get("refunds", [])):
            return Done("lines already cancelled in Shopify")
        found = await self._get(
            f"orders/{order}/fulfillment_orders.json", "fulfillment_orders", order
        )
        where = _line_locations(found.get("fulfillment_orders", []))
        items = []
        for line_id, units in units_by_line(call.lines).items():
            if line_id not in where:
                raise GiveUp(f"line {line_id} is not a line item of Shopify order {order}")
            items.append(
                {
                    "line_item_id": int(line_id),
                    "quantity": units,
                    "restock_type": "cancel",
                    "location_id": where[line_id],
                }
            )
        note = f"{(call.reason or 'lines cancelled')[:200]} {marker}"
        body = {"refund": {"refund_line_items": items, "notify": True, "note": note}}
        answer = await self.http.call(
            "POST", self.prefix + f"orders/{order}/refunds.json", "cancel_lines", body=body
        )
        refund = str((answer.body or {}).get("refund", {}).get("id"))
        cut = ", ".join(f"{i['quantity']} of line {i['line_item_id']}" for i in items)
        return Done(f"refund {refund} cancelled {cut}", refund)

    async def _not_cancelled(self, call: ChannelCall) -> None:
        """A shipment that left after its order was cancelled in Shopify (the location shipped
        before our cancel reached it) cannot be fulfilled there: a person must act."""
        order = call.channel_order_ref
        found = await self._get(f"orders/{order}.json", "order", order)
        if (found.get("order") or {}).get("cancelled_at"):
            raise GiveUp(
                f"Shopify order {order} is cancelled, but shipment {call.shipment_id} left "
                f"anyway (tracking {call.tracking_number or 'none'}): refund or reach the customer"
            )

    async def _get(self, path: str, name: str, order: str) -> dict[str, Any]:
        answer = await self.http.call("GET", self.prefix + path, name, handles=(404,))
        if answer.status == 404:
            raise GiveUp(f"Shopify has no order {order} (GET {path} answered 404)")
        return answer.body if isinstance(answer.body, dict) else {}
