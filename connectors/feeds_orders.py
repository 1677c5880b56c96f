"""Order feeds: wholesale purchase orders, store pickup (BOPIS) orders, marketplace documents.

Pure parsers, text in and `Parsed` out. A CSV order spans several rows (one per line item)
grouped by its reference; an order with any bad row is rejected whole: every bad row is
reported with its reason, and every good row of that order too ("not sent: ..."), so the
dead-letter topic holds the complete order for a replay once it is fixed. Other orders of
the file go through.

Ids are deterministic: an order's id comes from the channel's reference and its event id
from the order id, so a re-sent file yields the same events and consumers drop the repeats.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from connectors.feeds_parse import (
    Fields,
    Parsed,
    Problem,
    Row,
    RowError,
    describe_validation,
    iter_groups,
    read_csv,
)
from connectors.json_input import JsonInputError, load_json
from schemas.models import (
    Address,
    Channel,
    Customer,
    FulfillmentMethod,
    Message,
    OrderLine,
    OrderPlaced,
    ServiceLevel,
)

WHOLESALE_COLUMNS = (
    "po_number",
    "po_date",
    "partner_id",
    "ship_to_name",
    "ship_to_address1",
    "ship_to_city",
    "ship_to_state",
    "ship_to_postal",
    "ship_to_country",
    "line_number",
    "sku",
    "quantity",
    "unit_price",
    "currency",
)
WHOLESALE_OPTIONAL = ("ship_to_address2", "requested_service", "buyer_email")
PICKUP_COLUMNS = (
    "order_ref",
    "store_id",
    "customer_id",
    "sku",
    "quantity",
    "unit_price",
    "currency",
    "placed_at",
)
PICKUP_OPTIONAL = ("email", "loyalty_tier")

# What partners write in the requested-service field, beyond the contract's own names.
SERVICE_ALIASES: Mapping[str, ServiceLevel] = {
    "GROUND": ServiceLevel.STANDARD,
    "STD": ServiceLevel.STANDARD,
    "EXPEDITED": ServiceLevel.EXPRESS,
    "2DAY": ServiceLevel.EXPRESS,
    "SECOND_DAY": ServiceLevel.EXPRESS,
    "OVERNIGHT": ServiceLevel.NEXT_DAY,
    "NEXTDAY": ServiceLevel.NEXT_DAY,
    "NEXT_DAY_AIR": ServiceLevel.NEXT_DAY,
}


@dataclass(frozen=True)
class _ReadRow:
    """A good row of a multi-row order: the order-level fields it repeats, and its line."""

    row: Row
    header: dict[str, Any]
    line: OrderLine


ReadRow = Callable[[Fields, int], tuple[dict[str, Any], dict[str, Any]]]
BuildOrder = Callable[[dict[str, Any], tuple[OrderLine, ...]], OrderPlaced]


def _service_level(f: Fields, name: str) -> ServiceLevel:
    text = (f.optional_text(name) or "STANDARD").upper().replace(" ", "_").replace("-", "_")
    if text in ServiceLevel.__members__:
        return ServiceLevel(text)
    if text in SERVICE_ALIASES:
        return SERVICE_ALIASES[text]
    known = ", ".join([*ServiceLevel, *SERVICE_ALIASES])
    f.fail(f"{name} {f.optional_text(name)!r} is not one of {known}")
    return ServiceLevel.STANDARD


def _read(row: Row, read_row: ReadRow, index: int) -> _ReadRow:
    f = Fields(row.cells)
    header, line = read_row(f, index)
    f.check()
    try:
        return _ReadRow(row, header, OrderLine(**line))
    except ValidationError as exc:
        raise RowError(describe_validation(exc)) from exc


def _differences(header: Mapping[str, Any], first: Mapping[str, Any]) -> list[str]:
    return [
        f"{name} {str(header[name])!r} differs from {str(first[name])!r}"
        for name in header
        if header[name] != first[name]
    ]


def _order_rows(
    rows: Sequence[Row], file: str, read_row: ReadRow
) -> tuple[list[_ReadRow], list[Problem]]:
    """Read every row of one order; rows that disagree with the first on order fields are bad."""
    good: list[_ReadRow] = []
    problems: list[Problem] = []
    line_ids: dict[str, int] = {}
    for index, row in enumerate(rows, start=1):
        try:
            read = _read(row, read_row, index)
            if good and (diff := _differences(read.header, good[0].header)):
                raise RowError(f"{'; '.join(diff)} (line {good[0].row.line} of this order)")
            if read.line.line_id in line_ids:
                seen = line_ids[read.line.line_id]
                raise RowError(f"line_number {read.line.line_id} already given at line {seen}")
        except RowError as exc:
            problems.append(Problem(file, row.line, str(exc), row.raw))
            continue
        line_ids[read.line.line_id] = row.line
        good.append(read)
    return good, problems


def parse_orders(
    rows: Sequence[Row], file: str, keys: Sequence[str], what: str, read: ReadRow, build: BuildOrder
) -> Parsed:
    """Group rows into orders by the columns `keys`; an order with a bad row is rejected whole."""
    records: list[Message] = []
    problems: list[Problem] = []
    for key, group in iter_groups(rows, *keys):
        name = f"{what} {'/'.join(k for k in key if k) or '(no reference)'}"
        good, bad = _order_rows(group, file, read)
        if not bad:
            try:
                records.append(build(good[0].header, tuple(g.line for g in good)))
                continue
            except ValidationError as exc:
                reason = f"{name} is invalid: {describe_validation(exc)}"
                bad = [Problem(file, g.row.line, reason, g.row.raw) for g in good]
                good = []
        lines = ", ".join(str(p.line) for p in bad)
        reason = f"not sent: {name} has bad rows (line{'s' if len(bad) > 1 else ''} {lines})"
        problems += bad + [Problem(file, g.row.line, reason, g.row.raw) for g in good]
    problems.sort(key=lambda p: p.line)
    return Parsed(records, problems)


def _total(lines: tuple[OrderLine, ...]) -> Decimal:
    return sum((line.unit_price * line.quantity for line in lines), Decimal(0))


# ---- wholesale ------------------------------------------------------------------------------


def _wholesale_row(f: Fields, _index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    header: dict[str, Any] = {
        "partner_id": f.text("partner_id"),
        "po_number": f.text("po_number"),
        "po_date": f.timestamp("po_date"),
        "buyer_email": f.optional_text("buyer_email"),
        "ship_to": (
            f.text("ship_to_name"),
            f.text("ship_to_address1"),
            f.optional_text("ship_to_address2"),
            f.text("ship_to_city"),
            f.text("ship_to_state"),
            f.text("ship_to_postal"),
            f.country("ship_to_country"),
        ),
        "currency": f.currency("currency"),
        "service_level": _service_level(f, "requested_service"),
    }
    line = {
        "line_id": str(f.whole("line_number", minimum=1)),
        "sku": f.text("sku"),
        "quantity": f.whole("quantity", minimum=1),
        "unit_price": f.money("unit_price"),
    }
    return header, line


def _wholesale_order(header: dict[str, Any], lines: tuple[OrderLine, ...]) -> OrderPlaced:
    name, line1, line2, city, region, postal_code, country = header["ship_to"]
    order_id = f"WHS-{header['partner_id']}-{header['po_number']}"
    return OrderPlaced(
        event_id=f"evt-{order_id}",
        order_id=order_id,
        channel=Channel.WHOLESALE,
        channel_order_ref=header["po_number"],
        placed_at=header["po_date"],
        customer=Customer(customer_id=header["partner_id"], email=header["buyer_email"]),
        fulfillment_method=FulfillmentMethod.SHIP,
        ship_to=Address(
            name=name,
            line1=line1,
            line2=line2,
            city=city,
            region=region,
            postal_code=postal_code,
            country=country,
        ),
        lines=lines,
        currency=header["currency"],
        order_total=_total(lines),
        service_level=header["service_level"],
        tags=("wholesale",),
    )


def parse_wholesale(text: str, file: str) -> Parsed:
    """Partner purchase orders (EDI 850 as CSV), one `OrderPlaced` per partner and PO number."""
    rows, problems = read_csv(text, file, WHOLESALE_COLUMNS, WHOLESALE_OPTIONAL)
    parsed = parse_orders(
        rows, file, ("partner_id", "po_number"), "PO", _wholesale_row, _wholesale_order
    )
    return Parsed(parsed.records, sorted(problems + parsed.problems, key=lambda p: p.line))


# ---- store pickup (BOPIS) -------------------------------------------------------------------


def _pickup_row(f: Fields, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    header: dict[str, Any] = {
        "order_ref": f.text("order_ref"),
        "store_id": f.text("store_id"),
        "customer_id": f.text("customer_id"),
        "email": f.optional_text("email"),
        "loyalty_tier": f.optional_text("loyalty_tier"),
        "currency": f.currency("currency"),
        "placed_at": f.timestamp("placed_at"),
    }
    line = {
        "line_id": str(index),
        "sku": f.text("sku"),
        "quantity": f.whole("quantity", minimum=1),
        "unit_price": f.money("unit_price"),
    }
    return header, line


def _pickup_order(header: dict[str, Any], lines: tuple[OrderLine, ...]) -> OrderPlaced:
    order_id = f"POS-{header['order_ref']}"
    return OrderPlaced(
        event_id=f"evt-{order_id}",
        order_id=order_id,
        channel=Channel.POS,
        channel_order_ref=header["order_ref"],
        placed_at=header["placed_at"],
        customer=Customer(
            customer_id=header["customer_id"],
            loyalty_tier=header["loyalty_tier"],
            email=header["email"],
        ),
        fulfillment_method=FulfillmentMethod.PICKUP,
        pickup_location_id=header["store_id"],
        lines=lines,
        currency=header["currency"],
        order_total=_total(lines),
        service_level=ServiceLevel.STANDARD,
        tags=("bopis",),
    )


def parse_pickup(text: str, file: str) -> Parsed:
    """Buy-online-pick-up-in-store orders: one PICKUP `OrderPlaced` per order_ref."""
    rows, problems = read_csv(text, file, PICKUP_COLUMNS, PICKUP_OPTIONAL)
    parsed = parse_orders(rows, file, ("order_ref",), "order", _pickup_row, _pickup_order)
    return Parsed(parsed.records, sorted(problems + parsed.problems, key=lambda p: p.line))


# ---- marketplace documents ------------------------------------------------------------------

MarketplaceParse = Callable[[dict[str, Any]], OrderPlaced]


def _document(raw: str, parse: MarketplaceParse) -> OrderPlaced:
    try:
        doc = load_json(raw)  # nested too deeply or a lone surrogate: this row's problem too
    except JsonInputError as exc:
        raise RowError(str(exc)) from exc
    if not isinstance(doc, dict):
        raise RowError(f"expected a JSON object, got {type(doc).__name__}")
    try:
        return parse(doc)
    except ValidationError as exc:
        raise RowError(f"not a valid order: {describe_validation(exc)}") from exc
    except ValueError as exc:  # the mapping's own errors say where and why
        raise RowError(f"not a valid order: {exc}") from exc
    except (KeyError, TypeError, AttributeError) as exc:
        # A document of an unexpected shape can trip the mapping itself: still only this row.
        raise RowError(f"not a valid order: {type(exc).__name__}: {exc}") from exc


def parse_marketplace(text: str, file: str, parse: MarketplaceParse, *, json_lines: bool) -> Parsed:
    """Marketplace order documents: one JSON object per file, or one per line (JSON lines).

    `parse` maps one document to an `OrderPlaced` (``connectors.marketplace.marketplace_order``
    in production); anything it raises makes that document a problem.
    """
    text = text.removeprefix("\ufeff")
    chunks = (
        [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
        if json_lines
        else [(1, text.strip())]
    )
    records: list[Message] = []
    problems: list[Problem] = []
    for line, raw in chunks:
        try:
            records.append(_document(raw, parse))
        except RowError as exc:
            problems.append(Problem(file, line, str(exc), raw))
    if not chunks:
        problems.append(Problem(file, 0, "the file is empty: no order documents", ""))
    return Parsed(records, problems)
