"""JSON from outside is read strictly: nesting past the decoder's limit and lone surrogates are
refused with a reason, as text that is not JSON is, and a marketplace feed makes either one
problem row instead of failing the whole file."""

from __future__ import annotations

import json

import pytest

from connectors.feeds_orders import parse_marketplace
from connectors.json_input import LONE_SURROGATE, NESTED_TOO_DEEPLY, JsonInputError, load_json
from connectors.marketplace import marketplace_order
from tests.e2e.test_webhook import fixture_bytes


def test_json_is_read_with_its_escapes_including_a_surrogate_pair() -> None:
    assert load_json(b'{"a": ["\\ud83d\\ude00", 1.5, null]}') == {"a": ["\U0001f600", 1.5, None]}
    assert load_json("[1]".encode("utf-16")) == [1]  # as Python's decoder reads it


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[" * 30_000 + b"]" * 30_000, NESTED_TOO_DEEPLY),
        (b'{"id": "\\ud800"}', LONE_SURROGATE),
        (b'{"\\udfff": 1}', LONE_SURROGATE),  # in a key too
        ('["\\ud800"]'.encode("utf-16"), LONE_SURROGATE),
        (b"\xed\xa0\x80", "not valid JSON: "),  # a surrogate as raw bytes is not UTF-8
        (b"{", "not valid JSON: "),
    ],
)
def test_what_no_record_could_carry_is_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(JsonInputError) as refused:
        load_json(raw)
    assert str(refused.value).startswith(reason)


def test_a_feed_line_nested_too_deeply_or_with_a_lone_surrogate_is_one_problem_row() -> None:
    good = json.dumps(json.loads(fixture_bytes("marketplace_order.json")))
    text = "\n".join(
        [good, "[" * 30_000 + "]" * 30_000, good.replace("113-8734216-5509851", "\\ud800")]
    )
    parsed = parse_marketplace(text, "orders.jsonl", marketplace_order, json_lines=True)
    assert len(parsed.records) == 1
    assert [(p.line, p.message) for p in parsed.problems] == [
        (2, f"line 2: {NESTED_TOO_DEEPLY}"),
        (3, f"line 3: {LONE_SURROGATE}"),
    ]
