"""Where every channel call stands, read back from ``dom.channel-sync.v1`` (the latest record
of each call wins; a tombstone forgets it). Pure: the caller reads the messages."""

from __future__ import annotations

from collections.abc import Iterable

from schemas.channels import ChannelCall
from schemas.codec import Codec, DecodeError
from schemas.enums import ChannelCallState

OPEN_STATES = frozenset({ChannelCallState.RETRYING, ChannelCallState.RETRY_REQUESTED})
"""Calls still being made: a channel was busy, or an operator asked again."""


def latest_calls(
    records: Iterable[tuple[bytes | None, bytes | None]], codec: Codec
) -> dict[str, ChannelCall]:
    """The latest record of each call, by call id, from (key, value) pairs in log order;
    records that do not decode are left out (the dead-letter topic has the story)."""
    calls: dict[str, ChannelCall] = {}
    for key, value in records:
        if value is None:
            if key is not None:
                calls.pop(key.decode("utf-8", "replace"), None)
            continue
        try:
            call = codec.decode_as(value, ChannelCall)
        except DecodeError:
            continue
        calls[call.call_id] = call
    return calls


def by_state(calls: Iterable[ChannelCall], *states: ChannelCallState) -> list[ChannelCall]:
    """The calls in ``states``, oldest first."""
    return sorted((c for c in calls if c.state in states), key=lambda c: (c.at, c.call_id))


def of_order(calls: Iterable[ChannelCall], order_id: str) -> list[ChannelCall]:
    """An order's calls, in the order they reached their state (its timeline's entries)."""
    return sorted((c for c in calls if c.order_id == order_id), key=lambda c: c.at)
