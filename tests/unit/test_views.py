"""The network view keeps availability records as bytes until routing reads them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from schemas.codec import Codec
from schemas.common import millis
from schemas.models import Availability, LocationAvailability
from streams.views import AvailabilityBook, NetworkView, _fold
from tests.unit.factories import at, make_availability, make_location, make_product, make_rule


class CountingCodec(Codec):
    """The real codec, counting how many records it decodes."""

    def __init__(self) -> None:
        super().__init__()
        self.decoded = 0

    def decode_as(self, data: bytes, *model_types: Any) -> Any:
        self.decoded += 1
        return super().decode_as(data, *model_types)

    def decode_fields(self, data: bytes, model_type: Any) -> Any:
        self.decoded += 1
        return super().decode_fields(data, model_type)


def at_dc(sku: str, available: int) -> Availability:
    line = LocationAvailability(
        location_id="DC-EAST", on_hand=available, reserved=0, safety_stock=0, available=available
    )
    return make_availability(sku, locations=(line,), total_available=available)


def test_a_raw_record_is_decoded_once_and_only_when_read() -> None:
    codec = CountingCodec()
    view = NetworkView()
    view.availability.put_raw("SKU-1", codec.encode(at_dc("SKU-1", 5)), codec)
    view.availability.put_raw("SKU-2", codec.encode(at_dc("SKU-2", 9)), codec)
    assert codec.decoded == 0
    assert len(view.availability) == 2
    assert sorted(view.availability) == ["SKU-1", "SKU-2"]

    assert view.stock("SKU-1") == {"DC-EAST": 5}
    assert view.stock("SKU-1") == {"DC-EAST": 5}
    assert codec.decoded == 1  # SKU-2 was never read, SKU-1 decoded once


def test_the_latest_record_wins_raw_or_decoded() -> None:
    codec = Codec()
    book = AvailabilityBook()
    book.put(at_dc("SKU-1", 5))
    book.put_raw("SKU-1", codec.encode(at_dc("SKU-1", 3)), codec)
    assert book["SKU-1"].total_available == 3
    book.put(at_dc("SKU-1", 8))
    assert book["SKU-1"].total_available == 8
    assert len(book) == 1


def test_routing_reads_the_latest_figures_raw_or_decoded() -> None:
    codec = Codec()
    view = NetworkView()
    view.availability.put_raw("SKU-1", codec.encode(at_dc("SKU-1", 3)), codec)
    assert view.stock("SKU-1") == {"DC-EAST": 3}
    view.availability.put(at_dc("SKU-1", 8))
    assert view.stock("SKU-1") == {"DC-EAST": 8}
    view.availability.put_raw("SKU-1", codec.encode(at_dc("SKU-1", 0)), codec)
    assert view.stock("SKU-1") == {"DC-EAST": 0}
    assert view.availability["SKU-1"].total_available == 0  # the whole record, when asked
    assert view.stock("SKU-9") == {}


def test_the_figures_come_with_the_time_the_owner_wrote_them() -> None:
    codec = CountingCodec()
    view = NetworkView()
    assert view.stock_ms("SKU-1") is None  # no record yet

    view.availability.put_raw("SKU-1", codec.encode(stamped("SKU-1", 3, at(5))), codec)
    assert view.stock_ms("SKU-1") == millis(at(5))
    assert view.stock("SKU-1") == {"DC-EAST": 3}
    assert codec.decoded == 1  # the time is read with the figures, not on its own

    view.availability.put(stamped("SKU-1", 2, at(9)))  # this worker's own news, decoded
    assert view.stock_ms("SKU-1") == millis(at(9))
    view.availability.put_raw("SKU-1", codec.encode(stamped("SKU-1", 1, at(12))), codec)
    assert view.stock_ms("SKU-1") == millis(at(12))
    assert view.stock("SKU-1") == {"DC-EAST": 1}


def stamped(sku: str, available: int, updated_at: datetime) -> Availability:
    return at_dc(sku, available).model_copy(update={"updated_at": updated_at})


def test_an_undecodable_record_reads_as_missing() -> None:
    book = AvailabilityBook()
    book.put_raw("SKU-1", b"garbage", Codec())
    view = NetworkView()
    view.availability = book
    assert view.stock("SKU-1") == {}
    with pytest.raises(KeyError):
        book["SKU-1"]
    assert len(book) == 0


class _Message:
    """A record as the view's follower reads it."""

    def __init__(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.topic, self.key, self.value = topic, key, value
        self.partition, self.offset = 0, 0


def test_the_view_skips_a_master_record_whose_key_is_not_its_id() -> None:
    """The masters and rules stages dead-letter such a record (bad_key); the view applied it
    all the same, so a record refused for its key closed DC-EAST for every order."""
    codec, view = Codec(), NetworkView()
    _fold(
        view,
        codec,
        _Message("locations", b"DC-EAST", codec.encode(make_location())),
        "locations",
        "rules",
    )
    closed = make_location(active=False, capabilities=())
    rule = make_rule("RULE-1")

    for topic, key, record in [
        ("locations", b"DC-OTHER", closed),
        ("locations", None, closed),
        ("rules", b"RULE-2", rule),
        ("products", b"SKU-2", make_product("SKU-1")),
    ]:
        _fold(view, codec, _Message(topic, key, codec.encode(record)), "locations", "rules")

    assert view.locations["DC-EAST"].active and set(view.locations) == {"DC-EAST"}
    assert len(view.rules) == 0 and view.products == {}
    _fold(view, codec, _Message("rules", b"RULE-1", codec.encode(rule)), "locations", "rules")
    assert view.rules.get("RULE-1") == rule


def test_a_copy_landing_after_a_rules_deletion_does_not_bring_it_back() -> None:
    from streams.views import NetworkView
    from tests.unit.factories import make_rule

    view = NetworkView()
    view.apply(make_rule("R-1", version=2))
    view.apply(make_rule("R-1", version=3, condition="order.total >"))  # refused
    view.forget_rule("R-1")
    view.apply(make_rule("R-1", version=2))  # the copy published after the refusal, late
    assert view.rules.get("R-1") is None
    view.apply(make_rule("R-1", version=4))  # created again, above every version it had
    assert view.rules.get("R-1") is not None


def test_the_view_follows_the_channel_policies_and_a_tombstone_resets_one() -> None:
    from schemas.enums import Channel, LocationKind
    from tests.unit.factories import make_channel_policy

    codec, view = Codec(), NetworkView()
    for location in (make_location("DC-1"), make_location("ST-1", kind=LocationKind.STORE)):
        view.apply(location)
    default = view.channel_plan()
    assert default.locations_for("MARKETPLACE") is None

    def fold(key: bytes, value: bytes | None) -> None:
        _fold(view, codec, _Message("channels", key, value), "locations", "rules", "channels")

    policy = codec.encode(make_channel_policy())
    fold(b"WEB", policy)  # keyed by another channel: skipped (the masters stage reports it)
    assert view.channel_plan() is default
    fold(b"MARKETPLACE", policy)
    limited = view.channel_plan()
    assert limited.locations_for("MARKETPLACE") == {"DC-1"}
    assert limited.policy("MARKETPLACE").buffer_units == 2
    assert limited.fingerprint != default.fingerprint
    assert view.channel_plan() is limited  # built once until something changes

    view.apply(make_location("ST-1", kind=LocationKind.STORE, active=False))
    assert view.channel_plan().fingerprint not in (limited.fingerprint, default.fingerprint)
    view.apply(make_location("ST-1", kind=LocationKind.STORE))
    assert view.channel_plan().fingerprint == limited.fingerprint

    fold(b"MARKETPLACE", None)  # reset: every location, no buffer
    assert view.channel_plan().fingerprint == default.fingerprint
    assert view.channel_plan().policy(Channel.MARKETPLACE).every_location
