"""The work queues of live orders (``/orders/`` and ``dom orders list``) without a broker: which
stored order lands in which queue, since when, oldest first; the workers' answers merged, a
silent worker named; and the table an operator reads."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from click.testing import CliRunner

from dom.cli import main
from dom.orders_queues import human_age, render_queues
from schemas.models import OrderHold, OrderHoldKind, OrderPlaced
from streams.core.saga.queues import MARKERS, QUEUES, merge, parse_query, scan
from streams.core.saga.state import HistoryEntry, Line, OrderState, SagaShipment, ShipmentState
from streams.order_stage import encode_state
from streams.runtime.web import queues_page
from tests.conftest import free_port
from tests.unit.factories import T0, make_order, make_pickup_order

NOW = T0 + timedelta(days=1)


def history(*steps: tuple[str, float], action: str | None = None) -> list[HistoryEntry]:
    """Entries of (status, minutes after T0); ``action`` marks the last one an action's answer."""
    entries = [HistoryEntry(status=s, reason="r", at=T0 + timedelta(minutes=m)) for s, m in steps]
    if action is not None:
        entries[-1].action_id = action
    return entries


def shipment(
    sid: str,
    location: str = "DC-EAST",
    state: ShipmentState = ShipmentState.OPEN,
    kind: str = "SHIP",
    accepted: bool = False,
    opened_at: datetime | None = None,
    ready_at: datetime | None = None,
) -> SagaShipment:
    lines = [Line(line_id="1", sku="SKU-1", quantity=1)]
    return SagaShipment(
        shipment_id=sid,
        location_id=location,
        kind=kind,
        lines=lines,
        attempt=1,
        state=state,
        accepted=accepted,
        opened_at=opened_at,
        ready_at=ready_at,
    )


def stored(order: OrderPlaced, **fields: Any) -> OrderState:
    return OrderState(order=order, **fields)


def held(order_id: str = "ORD-H") -> OrderState:
    hold = OrderHold(
        hold_id=f"{order_id}-H1",
        kind=OrderHoldKind.RULE,
        reason="needs a manual review",
        rule_id="hold-very-large-orders",
    )
    # went on hold at 1 min; a refused release at 30 min answered ON_HOLD again
    steps = history(("RECEIVED", 0), ("ON_HOLD", 1), ("ON_HOLD", 30), action="act-1")
    return stored(make_order(order_id), status="ON_HOLD", holds=[hold], history=steps)


def backordered(order_id: str, minutes: float, status: str = "BACKORDERED") -> OrderState:
    return stored(
        make_order(order_id, lines=[("SKU-1", 2)]),
        status=status,
        backordered=[Line(line_id="1", sku="SKU-1", quantity=2)],
        waiting={"SKU-1": 2},
        waiting_since={"SKU-1": T0 + timedelta(minutes=minutes)},
        history=history(("RECEIVED", minutes), (status, minutes)),
    )


def allocated(order_id: str = "ORD-A", **fields: Any) -> OrderState:
    # allocated at 10 min; an action answered at 50 min with the same status
    steps = history(("RECEIVED", 0), ("ALLOCATED", 10), ("ALLOCATED", 50), action="act-2")
    shipments = {"S1": shipment("S1"), "S2": shipment("S2", "DC-WEST", accepted=True)}
    return stored(make_order(order_id), status="ALLOCATED", history=steps, shipments=shipments)


def pickup(order_id: str, ship: SagaShipment, status: str = "ALLOCATED") -> OrderState:
    steps = history(("RECEIVED", 0), ("ALLOCATED", 5))
    return stored(
        make_pickup_order(order_id, "STORE-1"),
        status=status,
        history=steps,
        shipments={ship.shipment_id: ship},
    )


def found(*states: OrderState, limit: int = 100) -> dict[str, list[str]]:
    """The order ids of each queue, as the page lists them."""
    result = scan([encode_state(s) for s in states], QUEUES, limit, NOW)
    return {q: [e["order_id"] for e in entries] for q, entries in result.queues.items()}


def test_each_live_order_lands_in_the_queues_that_need_someone() -> None:
    released = stored(make_order("ORD-R"), status="ALLOCATED", history=history(("ON_HOLD", 1)))
    held_and_short = backordered("ORD-HB", 3, status="ON_HOLD")
    cancelled = backordered("ORD-C", 4).model_copy(update={"cancelled": True})
    store = shipment("P1", "STORE-1", kind="PICKUP")
    transfer = shipment("T1", "DC-EAST", ShipmentState.SHIPPED, kind="TRANSFER", accepted=True)
    collected = shipment("P3", "STORE-1", ShipmentState.COMPLETED, kind="PICKUP", accepted=True)

    queues = found(
        held(),
        released,
        held_and_short,
        backordered("ORD-B", 2),
        cancelled,
        allocated(),
        pickup("ORD-P1", store),
        pickup("ORD-P2", transfer, status="SHIPPED"),
        pickup("ORD-P3", collected, status="COMPLETED"),
    )

    assert queues == {
        "held": ["ORD-H", "ORD-HB"],
        "backordered": ["ORD-B"],
        "acceptance": ["ORD-P1", "ORD-A"],
        "pickup": ["ORD-P1", "ORD-P2"],
    }


def test_an_entry_says_what_the_order_waits_for_and_since_when() -> None:
    states = [held(), backordered("ORD-B", 2), allocated()]
    queues = scan([encode_state(s) for s in states], QUEUES, 100, NOW).queues

    [h] = queues["held"]
    assert (h["order_id"], h["channel"], h["status"]) == ("ORD-H", "WEB", "ON_HOLD")
    assert h["since"] == (T0 + timedelta(minutes=1)).isoformat()  # when it went on hold
    assert h["age_s"] == 24 * 3600 - 60
    assert h["holds"] == [
        {
            "hold_id": "ORD-H-H1",
            "kind": "RULE",
            "reason": "needs a manual review",
            "placed_by": None,
            "rule_id": "hold-very-large-orders",
        }
    ]
    [b] = queues["backordered"]
    assert b["waits"] == [
        {"sku": "SKU-1", "quantity": 2, "since": (T0 + timedelta(minutes=2)).isoformat()}
    ]
    assert b["age_s"] == 24 * 3600 - 120
    [a] = queues["acceptance"]
    # stored without the time it was commanded: since the order was allocated, not the answer
    allocated_at = (T0 + timedelta(minutes=10)).isoformat()
    assert a["shipments"] == [
        {"shipment_id": "S1", "location_id": "DC-EAST", "since": allocated_at}
    ]
    assert a["since"] == allocated_at


def test_a_shipment_waits_for_acceptance_since_it_was_commanded() -> None:
    first, second = (T0 + timedelta(minutes=m) for m in (20, 40))
    state = allocated().model_copy(
        update={
            "shipments": {
                "S1": shipment("S1", opened_at=second),
                "S3": shipment("S3", "DC-WEST", opened_at=first),
            }
        }
    )
    [entry] = scan([encode_state(state)], ["acceptance"], 10, NOW).queues["acceptance"]

    assert entry["since"] == first.isoformat()
    assert [(s["shipment_id"], s["since"]) for s in entry["shipments"]] == [
        ("S1", second.isoformat()),
        ("S3", first.isoformat()),
    ]


def test_a_pickup_entry_names_the_store_and_where_the_units_are() -> None:
    transfer = shipment("T1", "DC-EAST", ShipmentState.SHIPPED, kind="TRANSFER", accepted=True)
    [entry] = scan([encode_state(pickup("ORD-P", transfer))], ["pickup"], 10, NOW).queues["pickup"]

    assert entry["store"] == "STORE-1"
    assert entry["shipments"] == [
        {"shipment_id": "T1", "location_id": "DC-EAST", "kind": "TRANSFER", "state": "SHIPPED"}
    ]


def test_a_pickup_waits_since_the_store_had_it_ready() -> None:
    opened, ready = (T0 + timedelta(minutes=m) for m in (20, 90))
    at_store = shipment("P1", "STORE-1", kind="PICKUP", accepted=True, opened_at=opened)
    ready_one = shipment("P2", "STORE-1", kind="PICKUP", accepted=True, ready_at=ready)
    states = [pickup("ORD-READY", ready_one), pickup("ORD-NEW", at_store)]

    entries = scan([encode_state(s) for s in states], ["pickup"], 10, NOW).queues["pickup"]

    assert [(e["order_id"], e["since"]) for e in entries] == [
        ("ORD-NEW", opened.isoformat()),
        ("ORD-READY", ready.isoformat()),
    ]


def test_queues_are_oldest_first_and_cut_at_the_limit() -> None:
    states = [backordered(f"ORD-{m}", m) for m in (30, 5, 60, 10)]

    assert found(*states, limit=2)["backordered"] == ["ORD-5", "ORD-10"]


def test_a_value_outside_every_queue_is_not_decoded() -> None:
    done = stored(make_order("ORD-D"), status="COMPLETED", history=history(("COMPLETED", 1)))
    raw = encode_state(done)

    assert not any(all(m in raw for m in MARKERS[q]) for q in QUEUES)
    # a value no reader understands is counted, not raised, when its bytes look like a queue's
    result = scan([raw, b'{"status":"ON_HOLD", "order": 1}'], QUEUES, 10, NOW)
    assert result.unreadable == 1
    assert all(entries == [] for entries in result.queues.values())


def test_every_queue_member_holds_its_queue_markers_as_the_stage_stores_it() -> None:
    """The markers are spelled as the stored JSON spells them; if the encoding changes, the
    scan would skip every order of the queue, so this fails first."""
    store = shipment("P1", "STORE-1", kind="PICKUP")
    members = {
        "held": held(),
        "backordered": backordered("ORD-B", 1),
        "acceptance": allocated(),
        "pickup": pickup("ORD-P", store),
    }
    for queue, state in members.items():
        raw = encode_state(state)
        assert all(m in raw for m in MARKERS[queue]), queue


def test_merge_keeps_each_order_once_oldest_first() -> None:
    one = scan([encode_state(backordered(o, m)) for o, m in (("A", 3), ("B", 1))], QUEUES, 5, NOW)
    two = scan([encode_state(backordered(o, m)) for o, m in (("C", 2), ("A", 3))], QUEUES, 5, NOW)

    merged = merge([one.queues, two.queues], QUEUES, 5)
    assert [e["order_id"] for e in merged["backordered"]] == ["B", "C", "A"]
    assert [e["order_id"] for e in merge([one.queues, two.queues], QUEUES, 2)["backordered"]] == [
        "B",
        "C",
    ]


def test_the_query_names_a_queue_and_a_limit_or_takes_the_defaults() -> None:
    assert parse_query({}) == (QUEUES, 100)
    assert parse_query({"queue": "held", "limit": "1000"}) == (("held",), 1000)
    for bad in ({"queue": "stuck"}, {"limit": "0"}, {"limit": "1001"}, {"limit": "ten"}):
        with pytest.raises(ValueError, match="must be"):
            parse_query(bad)


# ---- the page across workers ------------------------------------------------------------------


def test_the_page_merges_the_other_workers_and_names_the_silent_one() -> None:
    mine = {b"ORD-H": encode_state(held())}
    theirs = {b"ORD-B": encode_state(backordered("ORD-B", 2))}
    run = asyncio.run(two_workers(mine, theirs))
    page = run["page"]

    assert [e["order_id"] for e in page["queues"]["held"]] == ["ORD-H"]
    assert [e["order_id"] for e in page["queues"]["backordered"]] == ["ORD-B"]
    assert page["workers"][0] == "http://me:1"
    assert sorted(page["workers"][1:]) == sorted([run["other"], run["silent"]])  # not the idle
    assert page["unanswered"] == [run["silent"]]
    assert run["asked"] == [{"local": "1", "limit": "100"}]  # the other answers for itself


async def two_workers(mine: dict[bytes, bytes], theirs: dict[bytes, bytes]) -> dict[str, Any]:
    """This worker's page with one other worker answering, one silent, and one holding no
    partition of the table (not asked)."""
    asked: list[dict[str, str]] = []

    async def other_page(request: web.Request) -> web.Response:
        asked.append(dict(request.query))
        page = await queues_page(fake_app(theirs_url), table(theirs), QUEUES, 100, local=True)
        return web.json_response(page)

    server_app = web.Application()
    server_app.router.add_get("/orders/", other_page)
    async with TestServer(server_app) as server, aiohttp.ClientSession() as session:
        theirs_url = str(server.make_url("")).rstrip("/")
        silent = f"http://127.0.0.1:{free_port()}"
        hosts = {theirs_url: {"cl": [1]}, silent: {"cl": [2]}, "http://idle:3": {"cl": []}}
        app = fake_app("http://me:1", {"http://me:1": {"cl": [0]}, **hosts}, session)
        page = await queues_page(app, table(mine), QUEUES, 100, local=False)
        return {"page": page, "asked": asked, "other": theirs_url, "silent": silent}


def fake_app(url: str, hosts: dict[str, Any] | None = None, session: Any = None) -> Any:
    metadata = {url: {"cl": [0]}} if hosts is None else hosts
    return SimpleNamespace(
        conf=SimpleNamespace(canonical_url=url),
        router=SimpleNamespace(table_metadata=lambda name: metadata),
        http_client=session,
    )


def table(values: dict[bytes, bytes]) -> Any:
    return SimpleNamespace(name="orders", values=values.values)


# ---- what dom orders list prints --------------------------------------------------------------


def test_ages_read_in_the_largest_whole_unit() -> None:
    assert [human_age(s) for s in (0, 45, 300, 7200, 7199, 3 * 86400 + 5)] == [
        "0s",
        "45s",
        "5m",
        "2h",
        "1h",
        "3d",
    ]


def test_the_table_shows_each_queue_with_age_and_what_each_order_waits_for() -> None:
    states = [held(), backordered("ORD-B", 2), allocated()]
    result = scan([encode_state(s) for s in states], QUEUES, 100, NOW)
    page = {"queues": result.queues, "workers": ["w1", "w2"], "unanswered": ["http://w2:6066"]}

    text = "\n".join(render_queues(page))

    assert "held (1)" in text and "backordered (1)" in text and "pickup (0)" in text
    lines = text.splitlines()
    assert "  ORDER  STATUS   AGE  WAITS FOR / WHERE" in lines
    assert (
        "  ORD-H  ON_HOLD  23h  ORD-H-H1 RULE by hold-very-large-orders: needs a manual review"
        in lines
    )
    assert "  ORD-B  BACKORDERED  23h  SKU-1 x2" in lines
    assert "  ORD-A  ALLOCATED  23h  S1 at DC-EAST" in lines
    assert lines[lines.index("pickup (0)") + 1] == "  (none)"
    assert "no answer from http://w2:6066: its orders are not listed" in text


def test_list_refuses_an_unknown_queue_or_limit_before_asking() -> None:
    env = {"DOM_WEB_PORT": str(free_port())}  # nothing listens there
    for args in (["--queue", "stuck"], ["--limit", "0"], ["--limit", "1001"]):
        result = CliRunner().invoke(main, ["orders", "list", *args], env=env)
        assert result.exit_code == 2, (args, result.output)


def test_list_says_when_no_worker_answers() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(main, ["orders", "list", "--url", url])

    assert result.exit_code == 1
    assert "is a worker running?" in result.output
