"""Dead letters keep the original bytes and say why and where in headers."""

import dataclasses

import pytest

from schemas.dlq import MAX_ERROR_CHARS, DeadLetter, dead_letter


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
        None, None, error="invalid: café", stage="s", source_topic="t", partition=0, offset=0
    )

    assert (letter.key, letter.value) == (None, None)
    assert dict(letter.headers)["dom.error"] == "invalid: café".encode()


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
