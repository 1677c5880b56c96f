"""An order's own figures: a total far above its lines, cents in a currency without them, and
absurd quantities are refused with a reason before anything is reserved."""

from __future__ import annotations

from decimal import Decimal

import pytest

from schemas.internal import SkuCommand
from streams.core.routing.model import Capability, LocationInfo, LocationKind
from streams.core.saga.apply import apply_input
from streams.core.saga.context import SagaContext
from streams.core.saga.order_checks import OrderLimits, order_problem
from tests.unit.factories import T0, make_line, make_order

LIMITS = OrderLimits()


def _problem(order_total: str, currency: str = "USD", **line: object) -> str | None:
    lines = [make_line("1", "SKU-1", 1, **line)]
    return order_problem(lines, currency, Decimal(order_total), LIMITS)


def test_a_total_far_above_the_lines_is_refused_with_the_figures() -> None:
    problem = _problem("99999.00", "EUR")
    assert problem is not None
    assert "order_total 99999.00 EUR" in problem and "(10.00 EUR)" in problem
    assert "at most 115.00" in problem  # 10.00 + 50% + 100


@pytest.mark.parametrize("total", ["10.00", "0.00", "4.99", "115.00"])
def test_discounts_tax_and_shipping_within_the_tolerance_pass(total: str) -> None:
    assert _problem(total) is None


def test_the_tolerance_is_the_operators() -> None:
    tight = OrderLimits(total_tolerance_pct=Decimal(0), total_tolerance_abs=Decimal("0.05"))
    lines = [make_line("1", "SKU-1", 3)]
    assert order_problem(lines, "USD", Decimal("30.05"), tight) is None
    assert order_problem(lines, "USD", Decimal("30.06"), tight) is not None


def test_cents_in_a_currency_without_minor_units_disagree_with_it() -> None:
    assert _problem("10.00", "JPY") is None
    problem = _problem("10.50", "JPY", unit_price=Decimal("10.50"))
    assert problem is not None and "JPY has no minor unit" in problem
    assert _problem("10.50", "USD", unit_price=Decimal("10.50")) is None


def test_a_line_above_the_per_line_maximum_is_refused() -> None:
    lines = [make_line("1", "SKU-1", 10**9)]
    problem = order_problem(lines, "USD", Decimal(0), LIMITS)
    assert problem is not None
    assert "line 1 asks for 1000000000 units" in problem and "100000" in problem


def test_the_saga_rejects_such_an_order_and_reserves_nothing() -> None:
    dc = LocationInfo("DC-1", LocationKind.DC, frozenset({Capability.SHIP}), lat=40.0, lon=-75.0)
    ctx = SagaContext(locations=(dc,), stock=lambda sku: {"DC-1": 100}, now=T0)
    order = make_order("ORD-EUR", currency="EUR", order_total=Decimal("99999.00"))
    order = order.model_copy(update={"lines": (make_line("1", "SKU-1", 1),)})

    state, outputs = apply_input(None, order, ctx)

    assert state is not None
    statuses = [o.status.value for o in outputs if hasattr(o, "status")]
    assert statuses == ["RECEIVED", "REJECTED"]
    assert "above what its lines are worth" in outputs[-1].reason
    assert not [o for o in outputs if isinstance(o, SkuCommand)]
