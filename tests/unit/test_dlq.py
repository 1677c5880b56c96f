"""Dead letters keep the original bytes and say why and where in headers."""

import dataclasses
from pathlib import Path

import pytest

from config.settings import Settings
from schemas.common import MAX_ID_CHARS
from schemas.dlq import MAX_ERROR_CHARS, DeadLetter, dead_letter
from schemas.topics import DLQ
from streams.runtime.faust_app import faust_app


def test_dead_letter_keeps_key_and_value_and_names_the_source() -> None:
    letter = dead_letter(
        b"ORD-1",
        b"\xc3\x01garbage",
        error="unknown schema fingerprint 0x0000000000000000",
        stage="routing",
        source_topic="dom.orders.v1",
        partition=2,
        offset=41,
    )

    assert letter.key == b"ORD-1"
    assert letter.value == b"\xc3\x01garbage"
    assert letter.headers == [
        ("dom.error", b"unknown schema fingerprint 0x0000000000000000"),
        ("dom.stage", b"routing"),
        ("dom.source.topic", b"dom.orders.v1"),
        ("dom.source.partition", b"2"),
        ("dom.source.offset", b"41"),
    ]


def test_tombstones_and_unicode() -> None:
    letter = dead_letter(
        b"ORD-1", None, error="invalid: café", stage="s", source_topic="t", partition=0, offset=0
    )

    assert (letter.key, letter.value) == (b"ORD-1", None)
    assert dict(letter.headers)["dom.error"] == "invalid: café".encode()


def test_a_record_with_neither_key_nor_value_is_sent_with_an_empty_value() -> None:
    """Kafka's clients refuse a record with neither key nor value (aiokafka asserts): the
    dead letter of a keyless tombstone stopped the stage that refused it."""
    letter = dead_letter(
        None, None, error="empty value", stage="s", source_topic="t", partition=0, offset=0
    )

    assert (letter.key, letter.value) == (None, b"")


def test_long_errors_are_cut() -> None:
    letter = dead_letter(
        b"k", b"v", error="x" * 10_000, stage="s", source_topic="t", partition=0, offset=0
    )

    error = dict(letter.headers)["dom.error"].decode()
    assert len(error) == MAX_ERROR_CHARS
    assert error.endswith("…")


def test_dead_letters_are_frozen() -> None:
    letter = DeadLetter(b"k", b"v", [])
    with pytest.raises(dataclasses.FrozenInstanceError):
        letter.key = b"other"  # type: ignore[misc]


def test_the_dead_letter_of_the_largest_input_fits_the_topic_and_the_worker(
    tmp_path: Path,
) -> None:
    """An input as large as the broker takes by default (1 MiB a record), its key as large as
    an id may be: its dead letter adds headers, and the worker must still be able to send it."""
    largest = 1024 * 1024
    letter = dead_letter(
        b"k" * MAX_ID_CHARS,
        b"\xc3\x01" + bytes(largest - 2),
        error="x" * 10 * MAX_ERROR_CHARS,
        stage="inventory",
        source_topic="prefix." * 30 + "dom.stock.v1",
        partition=2**31 - 1,
        offset=2**63 - 1,
    )
    size = len(letter.key or b"") + len(letter.value or b"")
    size += sum(len(name) + len(value) for name, value in letter.headers)

    limit = int(DLQ.config()["max.message.bytes"])
    assert size + 1024 < limit  # a record's own framing is tens of bytes
    app = faust_app(Settings(data_dir=tmp_path))
    assert app.conf.producer_max_request_size >= limit
