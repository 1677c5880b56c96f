"""Stock feeds: in-store sales from the tills, and on-hand counts from the warehouses.

Pure parsers, text in and `Parsed` out, one row at a time: a bad row is a problem, the
other rows go through. Event ids are derived from what identifies the row (store, receipt
and sku of a sale; location, sku and count time of a snapshot), so a re-sent file yields
the same ids and the inventory stage applies each event once.
"""

from __future__ import annotations

from pydantic import ValidationError

from connectors.feeds_parse import (
    Fields,
    Parsed,
    Problem,
    RowError,
    describe_validation,
    read_csv,
    stable_id,
)
from schemas.models import Message, StockEvent, StockEventKind

POS_SALES_COLUMNS = ("store_id", "sku", "quantity", "sold_at", "receipt_id")
STOCK_COLUMNS = ("location_id", "sku", "on_hand", "counted_at")
STOCK_OPTIONAL = ("safety_stock",)


def _stock_event(**fields: object) -> StockEvent:
    try:
        return StockEvent(**fields)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise RowError(describe_validation(exc)) from exc


def parse_pos_sales(text: str, file: str) -> Parsed:
    """Sales at the till: each row takes `quantity` units of a sku off the store's on-hand.

    Two rows of one receipt for the same sku (scanned twice) are two sales: the second
    gets the occurrence number in its id, so both count and a re-sent file still dedupes.
    """
    rows, problems = read_csv(text, file, POS_SALES_COLUMNS)
    records: list[Message] = []
    seen: dict[tuple[str, str, str], int] = {}
    for row in rows:
        f = Fields(row.cells)
        store, sku, receipt = f.text("store_id"), f.text("sku"), f.text("receipt_id")
        quantity = f.whole("quantity", minimum=1)
        sold_at = f.timestamp("sold_at")
        try:
            f.check()
            occurrence = seen.get((store, receipt, sku), 0) + 1
            event = _stock_event(
                event_id=stable_id("pos-sale", store, receipt, sku, occurrence),
                sku=sku,
                location_id=store,
                kind=StockEventKind.ADJUSTMENT,
                quantity=-quantity,
                reason=f"POS sale, receipt {receipt}",
                occurred_at=sold_at,
            )
        except RowError as exc:
            problems.append(Problem(file, row.line, str(exc), row.raw))
            continue
        seen[(store, receipt, sku)] = occurrence
        records.append(event)
    problems.sort(key=lambda p: p.line)
    return Parsed(records, problems)


def parse_stock(text: str, file: str) -> Parsed:
    """A WMS count: a SNAPSHOT of on-hand per row, and a SAFETY_STOCK level when one is given."""
    rows, problems = read_csv(text, file, STOCK_COLUMNS, STOCK_OPTIONAL)
    records: list[Message] = []
    for row in rows:
        f = Fields(row.cells)
        location, sku = f.text("location_id"), f.text("sku")
        on_hand = f.whole("on_hand", minimum=0)
        safety = f.optional_whole("safety_stock", minimum=0)
        counted_at = f.timestamp("counted_at")
        try:
            f.check()
            events = [
                _stock_event(
                    event_id=stable_id("wms-count", location, sku, counted_at.isoformat()),
                    sku=sku,
                    location_id=location,
                    kind=StockEventKind.SNAPSHOT,
                    quantity=on_hand,
                    reason="WMS count",
                    occurred_at=counted_at,
                )
            ]
            if safety is not None:
                events.append(
                    _stock_event(
                        event_id=stable_id("wms-safety", location, sku, counted_at.isoformat()),
                        sku=sku,
                        location_id=location,
                        kind=StockEventKind.SAFETY_STOCK,
                        quantity=safety,
                        reason="WMS safety stock",
                        occurred_at=counted_at,
                    )
                )
        except RowError as exc:
            problems.append(Problem(file, row.line, str(exc), row.raw))
            continue
        records += events
    problems.sort(key=lambda p: p.line)
    return Parsed(records, problems)
