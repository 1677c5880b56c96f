"""One channel's policy as the pipeline applies it, and the arithmetic of what it may sell.

A channel sees, of one sku, the available-to-promise summed over the active locations that
serve it, less its buffer (``buffer_units`` and ``buffer_pct`` of that sum, rounded up), never
below zero; below its ``low_stock_threshold`` it sees 0. A location serves the channel when the
policy names it or its kind (a union: "the DCs and store 12"); a policy naming neither is
served by every location. A channel without a policy has the default: every location, no
buffer, no threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.enums import Channel, LocationKind
from schemas.sellable import ChannelPolicy

CHANNELS: tuple[Channel, ...] = tuple(Channel)
"""Every channel, in the contract's order: each gets a figure per sku."""


@dataclass(frozen=True, slots=True)
class SellPolicy:
    """What a channel may sell from, and what is held back from it."""

    channel: Channel
    location_ids: frozenset[str] = frozenset()
    location_kinds: frozenset[LocationKind] = frozenset()
    buffer_units: int = 0
    buffer_pct: int = 0
    low_stock_threshold: int = 0

    @property
    def every_location(self) -> bool:
        """True when no location or kind is named: every location serves the channel."""
        return not self.location_ids and not self.location_kinds

    def serves(self, location_id: str, kind: LocationKind) -> bool:
        """Whether the location serves the channel (whether it is active is the caller's)."""
        return (
            self.every_location or location_id in self.location_ids or kind in self.location_kinds
        )

    def sellable(self, available: int) -> int:
        """What the channel may sell of ``available`` units at its locations."""
        if available <= 0 or available < self.low_stock_threshold:
            return 0
        held = self.buffer_units + -(-available * self.buffer_pct // 100)  # pct rounded up
        return max(0, available - held)

    def describe(self) -> str:
        """The policy in a line, for explanations and ``dom channels list``."""
        if self.every_location:
            where = "every location"
        else:
            named = [*sorted(k.value for k in self.location_kinds), *sorted(self.location_ids)]
            where = ", ".join(named)
        held = [f"{self.buffer_units} units"] if self.buffer_units else []
        held += [f"{self.buffer_pct}%"] if self.buffer_pct else []
        parts = [where, f"buffer {' + '.join(held)}" if held else "no buffer"]
        if self.low_stock_threshold:
            parts.append(f"0 below {self.low_stock_threshold}")
        return "; ".join(parts)


def default_policy(channel: Channel) -> SellPolicy:
    """Every location, no buffer: a channel without a policy, or whose policy was reset."""
    return SellPolicy(channel)


def from_record(record: ChannelPolicy) -> SellPolicy:
    return SellPolicy(
        channel=record.channel,
        location_ids=frozenset(record.location_ids),
        location_kinds=frozenset(record.location_kinds),
        buffer_units=record.buffer_units,
        buffer_pct=record.buffer_pct,
        low_stock_threshold=record.low_stock_threshold,
    )


def same_policy(a: ChannelPolicy, b: ChannelPolicy) -> bool:
    """Whether two records say the same (who and when aside)."""
    return from_record(a) == from_record(b)
