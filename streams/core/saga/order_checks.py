"""Checks of an order's own figures, before it is routed: its money and its quantities.

Channels send an order's total with tax, shipping and discounts in it, so the total rarely
equals the sum of its lines; but an order whose total is far above what its lines are worth
(EUR 99,999.00 for lines worth 10.00) is a channel's bug or a fraud, not something to ship.
The tolerance is the operator's: the total may exceed the lines' worth by a share of it (tax,
shipping by weight) plus a fixed amount (a flat shipping fee on a cheap order). A total below
the lines' worth is a discount and is accepted down to zero.

A currency without minor units (yen, won, ...) cannot carry cents: an amount with cents in such
a currency disagrees with its currency. A line above the per-line maximum is refused before
anything is reserved, so a typo of 10^9 units never backorders a billion units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
        "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
    }
)  # fmt: skip
"""ISO 4217 currencies whose minor unit is 0 (no cents)."""


class PricedLine(Protocol):
    @property
    def line_id(self) -> str: ...
    @property
    def quantity(self) -> int: ...
    @property
    def unit_price(self) -> Decimal: ...


@dataclass(frozen=True)
class OrderLimits:
    """What an order's own figures may be: see the module's docstring."""

    total_tolerance_pct: Decimal = Decimal(50)
    """How far above the lines' worth the total may be, in percent of that worth."""
    total_tolerance_abs: Decimal = Decimal(100)
    """... plus this fixed amount, in the order's currency."""
    max_line_quantity: int = 100_000
    """Units one line may ask for."""


def order_problem(
    lines: Sequence[PricedLine], currency: str, total: Decimal, limits: OrderLimits
) -> str | None:
    """Why the order cannot be taken as it is, for a person to act on; None when it can."""
    for line in lines:
        if line.quantity > limits.max_line_quantity:
            return (
                f"line {line.line_id} asks for {line.quantity} units, above the per-line "
                f"maximum of {limits.max_line_quantity}"
            )
    if currency.upper() in ZERO_DECIMAL_CURRENCIES:
        for what, amount in [("order_total", total)] + [
            (f"line {x.line_id}'s unit_price", x.unit_price) for x in lines
        ]:
            if amount != amount.to_integral_value():
                return f"{what} {amount} has cents, but {currency} has no minor unit"
    worth = sum((x.unit_price * x.quantity for x in lines), Decimal(0))
    ceiling = worth * (1 + limits.total_tolerance_pct / 100) + limits.total_tolerance_abs
    if total > ceiling:
        return (
            f"order_total {total} {currency} is above what its lines are worth "
            f"({worth} {currency}) plus the tolerance ({limits.total_tolerance_pct}% + "
            f"{limits.total_tolerance_abs}): at most {ceiling.quantize(Decimal('0.01'))}"
        )
    return None
