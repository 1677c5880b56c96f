"""Every channel's policy over the network as it is now: what each channel may sell of a sku,
and which locations may fulfil its orders.

A :class:`ChannelPlan` is built from the policies, the locations (each worker builds its own
from what its view follows) and the channels whose figures are published
(``DOM_CHANNEL_AVAILABILITY_FOR``), and then only read. Its :attr:`~ChannelPlan.fingerprint` names
what the figures depend on: which active locations serve which channel, and each channel's
buffer and threshold. Two workers with the same policies and locations compute the same one,
and a change of a location that moves no figure (an address, a capacity) keeps it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from schemas.enums import Channel, LocationKind
from streams.core.channels.policy import CHANNELS, SellPolicy, default_policy


@dataclass(frozen=True, slots=True)
class Site:
    """A location as the channels see it."""

    location_id: str
    kind: LocationKind
    active: bool = True


class ChannelPlan:
    """The policies of every channel, over the known locations."""

    __slots__ = ("_allowed", "_policies", "_published", "_serving", "fingerprint")

    def __init__(
        self,
        policies: Mapping[Channel, SellPolicy] | None = None,
        sites: Iterable[Site] = (),
        published: Iterable[Channel] | None = None,
    ) -> None:
        given = policies or {}
        self._policies = tuple(given.get(c) or default_policy(c) for c in CHANNELS)
        told = set(CHANNELS if published is None else published)
        self._published = tuple(n for n, p in enumerate(self._policies) if p.channel in told)
        known = sorted(sites, key=lambda s: s.location_id)
        serving: dict[str, tuple[int, ...]] = {}
        for site in known:
            served = tuple(
                n for n in self._published if self._policies[n].serves(site.location_id, site.kind)
            )
            if site.active and served:
                serving[site.location_id] = served
        self._serving = serving
        self._allowed = {p.channel.value: _allowed(p, known) for p in self._policies}
        terms = [
            (p.channel.value, p.buffer_units, p.buffer_pct, p.low_stock_threshold)
            for n, p in enumerate(self._policies)
            if n in self._published
        ]
        digest = hashlib.sha256(repr((terms, sorted(serving.items()))).encode())
        self.fingerprint = digest.hexdigest()[:16]

    def policy(self, channel: str) -> SellPolicy:
        """The policy in force for ``channel`` (the default when it has none)."""
        return self._policies[CHANNELS.index(Channel(channel))]

    def policies(self) -> tuple[SellPolicy, ...]:
        """Every channel's policy, in the contract's order of channels."""
        return self._policies

    def locations_for(self, channel: str) -> frozenset[str] | None:
        """The known locations that serve ``channel`` (active or not); None: every location."""
        return self._allowed.get(channel)

    def figures(self, stock: Iterable[tuple[str, int]]) -> dict[str, int]:
        """What each published channel may sell of a sku with ``stock`` (location,
        available) pairs: channel -> units."""
        sums = [0] * len(CHANNELS)
        serving = self._serving
        for location_id, units in stock:
            if units > 0:
                for n in serving.get(location_id, ()):
                    sums[n] += units
        policies = self._policies
        return {policies[n].channel.value: policies[n].sellable(sums[n]) for n in self._published}


def published_channels(setting: str) -> tuple[Channel, ...]:
    """The channels a ``DOM_CHANNEL_AVAILABILITY_FOR`` names (comma-separated, or ``all``), in
    the contract's order; `ValueError` naming any that is no channel."""
    if setting.strip().lower() == "all":
        return tuple(CHANNELS)
    named = {part.strip().upper() for part in setting.split(",") if part.strip()}
    unknown = sorted(named - {c.value for c in CHANNELS})
    if unknown:
        raise ValueError(f"DOM_CHANNEL_AVAILABILITY_FOR: no channel {', '.join(unknown)}")
    return tuple(c for c in CHANNELS if c.value in named)


def _allowed(policy: SellPolicy, known: Iterable[Site]) -> frozenset[str] | None:
    """The locations whose shipments the channel's orders may use (None: every one)."""
    if policy.every_location:
        return None
    by_kind = {s.location_id for s in known if s.kind in policy.location_kinds}
    return frozenset(policy.location_ids | by_kind)


def changed_figures(published: Mapping[str, int], figures: Mapping[str, int]) -> dict[str, int]:
    """The figures that differ from what was published (a channel never published differs)."""
    return {channel: n for channel, n in figures.items() if published.get(channel) != n}
