"""The network view keeps availability records as bytes until routing reads them."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.codec import Codec
from schemas.models import Availability, LocationAvailability
from streams.views import AvailabilityBook, NetworkView
from tests.unit.factories import make_availability


class CountingCodec(Codec):
    """The real codec, counting how many records it decodes."""

    def __init__(self) -> None:
        super().__init__()
        self.decoded = 0

    def decode_as(self, data: bytes, *model_types: Any) -> Any:
        self.decoded += 1
        return super().decode_as(data, *model_types)


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


def test_an_undecodable_record_reads_as_missing() -> None:
    book = AvailabilityBook()
    book.put_raw("SKU-1", b"garbage", Codec())
    view = NetworkView()
    view.availability = book
    assert view.stock("SKU-1") == {}
    with pytest.raises(KeyError):
        book["SKU-1"]
    assert len(book) == 0
