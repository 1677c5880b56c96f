"""The HTTP connector under fuzz: whatever a channel (or anyone) sends, the answer is a 2xx,
or a 4xx that is JSON and says why; never a 5xx, and nothing is produced for a refusal.

Bodies are signed with the connector's secret, so the fuzz reaches the JSON decoder and the
channel mappings rather than stopping at the 401. The producer is the real
`ContractProducer`'s ``send`` (codec, topic, key, librdkafka's own checks on the record) with
nothing listening at its bootstrap; the broker's confirmation is `FakeProducer`'s. The last
tests are the regressions the fuzz found, one example each.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import currently_in_test_context, event, given
from hypothesis import strategies as st

from config.settings import Settings
from connectors.producer import ContractProducer, DeliveryCallback, DeliveryReport
from connectors.web import DOM_HMAC_HEADER, MAX_BODY, create_app, sign
from schemas.codec import Codec
from schemas.models import Message
from tests.conftest import free_port
from tests.e2e.test_webhook import (
    MARKETPLACE_PATH,
    SECRET,
    SHOPIFY_PATH,
    FakeProducer,
    fixture_bytes,
    shopify_headers,
)
from tests.unit.http_fuzz import (
    CONTENT_TYPES,
    FUZZ,
    METHODS,
    LoopbackApp,
    Reply,
    assert_answered,
    encodings,
    json_values,
    mutations_of,
    odd_values,
    path_segments,
    query_strings,
    texts,
    to_body,
)

DOCUMENTS = {
    SHOPIFY_PATH: ("shopify_order_ship.json", "shopify_order_bopis.json"),
    MARKETPLACE_PATH: ("marketplace_order.json",),
    "/webhooks/shopify/orders-cancelled": ("shopify_order_cancelled.json",),
    "/webhooks/shopify/orders-edited": ("shopify_order_edited.json",),
    "/webhooks/shopify/orders-updated": ("shopify_order_updated.json", "shopify_order_ship.json"),
    "/marketplace/cancellations": ("marketplace_cancellation.json",),
}
ORDER_PATHS = tuple(DOCUMENTS)


class SendingProducer(FakeProducer):
    """`ContractProducer.send` up to the network, so what production's ``produce`` would
    refuse (a record that does not encode, or is larger than a Kafka message) is refused
    here too; deliveries are then confirmed as `FakeProducer` confirms them."""

    def __init__(self) -> None:
        super().__init__()
        nowhere = Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}")
        self.real = ContractProducer(nowhere)

    def send(self, record: Message, *, on_delivery: DeliveryCallback | None = None) -> None:
        self.real.send(record)
        super().send(record, on_delivery=on_delivery)

    def poll(self, timeout: float = 0.0) -> int:
        # Confirm as soon as something was sent, not at the end of the connector's poll
        # interval: fuzzing is waiting otherwise.
        deadline = time.monotonic() + timeout
        while not self._pending and time.monotonic() < deadline:
            time.sleep(0.002)
        return super().poll(0)

    def close(self, timeout: float = 30.0) -> DeliveryReport:
        if not self.real._closed:
            self.real._producer.purge()  # never sent anywhere: drop them rather than wait
            self.real.close(0)  # else it keeps dialling the closed port for the whole session
        return super().close(timeout)


class Connector:
    """The app on loopback, with the producer behind it."""

    def __init__(self, app: LoopbackApp, producer: SendingProducer) -> None:
        self.app = app
        self.producer = producer
        self._ids = itertools.count()

    def post_signed(self, path: str, body: bytes, content_type: str | None = None) -> Reply:
        """``body`` signed as its channel signs it (a fresh webhook id each time)."""
        if path.startswith("/webhooks/shopify/"):
            headers = shopify_headers(body, f"wh-fuzz-{next(self._ids)}")
            headers["X-Shopify-Topic"] = "orders/" + path.rsplit("/orders-", 1)[1]
        else:
            headers = {DOM_HMAC_HEADER: sign(SECRET, body)}
        headers.pop("Content-Type", None)
        if content_type is not None:
            headers["Content-Type"] = content_type
        return self.checked(lambda: self.app.request("POST", path, body=body, headers=headers))

    def checked(self, send: Any) -> Reply:
        """``send()``'s reply, checked: answered with a reason, and produced only if 202 (a
        change may be several actions)."""
        before = len(self.producer.sent)
        reply: Reply = send()
        assert_answered(reply)
        if currently_in_test_context():  # shown by pytest --hypothesis-show-statistics
            event(f"HTTP {reply.status}")
        produced = len(self.producer.sent) - before
        expected = produced >= 1 if reply.status == 202 else produced == 0
        assert expected, (reply.status, produced, reply.body[:300])
        return reply


@pytest.fixture(scope="module")
def connector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Connector]:
    producer = SendingProducer()
    data_dir = tmp_path_factory.mktemp("connector")

    async def build(_stack: contextlib.AsyncExitStack) -> Any:
        settings = Settings(data_dir=data_dir, webhook_secret=SECRET)
        return create_app(settings, producer=cast(ContractProducer, producer))

    with LoopbackApp(build) as app:
        yield Connector(app, producer)
    producer.close()


def document(name: str) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(fixture_bytes(name)))


mutated_orders = st.one_of(
    *(
        st.tuples(st.just(path), mutations_of(document(name)), encodings)
        for path, names in DOCUMENTS.items()
        for name in names
    )
)


# ---- Fuzz ---------------------------------------------------------------------------------------


@FUZZ
@given(path=st.sampled_from(ORDER_PATHS), value=json_values | odd_values, encoding=encodings)
def test_any_signed_json_is_answered_with_a_reason(
    connector: Connector, path: str, value: Any, encoding: str
) -> None:
    connector.post_signed(path, to_body(value, encoding))


@FUZZ
@given(case=mutated_orders)
def test_real_orders_with_fields_mutated_are_answered_with_a_reason(
    connector: Connector, case: tuple[str, Any, str]
) -> None:
    path, value, encoding = case
    reply = connector.post_signed(path, to_body(value, encoding))
    if reply.status == 422:
        assert all(e["field"] and e["message"] for e in reply.json()["errors"])


@FUZZ
@given(
    path=st.sampled_from(ORDER_PATHS),
    body=st.binary(max_size=300),
    content_type=st.sampled_from(CONTENT_TYPES),
)
def test_raw_bytes_of_any_content_type_are_answered_with_a_reason(
    connector: Connector, path: str, body: bytes, content_type: str | None
) -> None:
    connector.post_signed(path, body, content_type)


@FUZZ
@given(
    path=st.sampled_from(ORDER_PATHS),
    header=st.sampled_from([DOM_HMAC_HEADER, "X-Shopify-Hmac-Sha256", "X-Other"]),
    signature=st.one_of(
        texts.filter(lambda t: t.isprintable() and t.isascii() and len(t) < 8000),
        st.binary(max_size=40).map(lambda b: sign("not-the-secret", b)),
    ),
)
def test_a_bad_signature_is_a_401_and_produces_nothing(
    connector: Connector, path: str, header: str, signature: str
) -> None:
    body = fixture_bytes(DOCUMENTS[path][0])
    reply = connector.checked(
        lambda: connector.app.request("POST", path, body=body, headers={header: signature})
    )
    assert reply.status == 401 and reply.json() == {"error": "invalid signature"}


@FUZZ
@given(
    method=st.sampled_from(METHODS),
    where=st.sampled_from(["/healthz", "/stats", "/metrics", *ORDER_PATHS, ""]),
    segment=path_segments(),
    how=st.sampled_from(["append", "replace", "alone"]),
    query=query_strings(),
)
def test_odd_paths_methods_and_queries_are_answered_with_a_reason(
    connector: Connector, method: str, where: str, segment: str, how: str, query: str
) -> None:
    path = {
        "append": f"{where}/{segment}",
        "replace": where.rsplit("/", 1)[0] + "/" + segment,
        "alone": f"/{segment}",
    }[how]
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    # Under aiohttp's request-line limit (connectors.web.MAX_REQUEST_LINE): beyond it, its
    # HTTP parser answers a plain-text 400 before the app sees anything.
    target = f"{path}?{query[:2_000]}" if query else path
    connector.checked(lambda: connector.app.request(method, target, body=body))


# ---- What the fuzz found: one example each ------------------------------------------------


def test_a_body_over_the_limit_is_a_413_with_a_reason(connector: Connector) -> None:
    huge = b"{" + b" " * MAX_BODY + b"}"
    for path in ORDER_PATHS:
        reply = connector.post_signed(path, huge)
        assert reply.status == 413
        assert reply.json() == {"error": "the request body is larger than 1024 KiB"}
        unsigned = connector.checked(lambda p=path: connector.app.request("POST", p, body=huge))
        assert unsigned.status == 413


def test_unknown_paths_and_wrong_methods_are_json(connector: Connector) -> None:
    reply = connector.checked(lambda: connector.app.request("GET", "/webhooks/nope"))
    assert (reply.status, reply.json()) == (404, {"error": "Not Found"})
    reply = connector.checked(lambda: connector.app.request("GET", SHOPIFY_PATH))
    assert (reply.status, reply.json()) == (405, {"error": "Method Not Allowed"})
    # A 10 KB path still reaches the router, which answers it in JSON like any other.
    reply = connector.checked(lambda: connector.app.request("GET", "/orders/" + "x" * 10_240))
    assert (reply.status, reply.json()) == (404, {"error": "Not Found"})


@pytest.mark.parametrize(
    ("path", "field", "when"),
    [
        (SHOPIFY_PATH, "created_at", "9999-12-31T23:59:59-23:59"),
        (SHOPIFY_PATH, "created_at", "0001-01-01T00:00:00+23:59"),
        (MARKETPLACE_PATH, "PurchaseDate", "9999-12-31T20:00:00-05:00"),
    ],
)
def test_a_time_outside_the_calendar_once_in_utc_is_a_422(
    connector: Connector, path: str, field: str, when: str
) -> None:
    order = document(DOCUMENTS[path][0])
    order[field] = when
    reply = connector.post_signed(path, to_body(order))
    assert reply.status == 422
    assert reply.json()["errors"] == [
        {
            "field": "order_placed.placed_at",
            "message": "is outside the years 1 to 9999 once converted to UTC",
        }
    ]


@pytest.mark.parametrize(
    ("path", "where"),
    [
        (SHOPIFY_PATH, ("id",)),
        (SHOPIFY_PATH, ("line_items", 0, "sku")),
        (MARKETPLACE_PATH, ("AmazonOrderId",)),
        (MARKETPLACE_PATH, ("BuyerInfo", "BuyerEmail")),  # hashed into the customer id
    ],
)
def test_a_lone_surrogate_is_a_422(connector: Connector, path: str, where: tuple[Any, ...]) -> None:
    order = document(DOCUMENTS[path][0])
    parent: Any = order
    for part in where[:-1]:
        parent = parent[part]
    parent[where[-1]] = "half a pair: \ud800"
    reply = connector.post_signed(path, to_body(order))  # the body has "\ud800", escaped
    assert reply.status == 422
    assert reply.json()["errors"] == [
        {
            "field": "body",
            "message": "a \\u escape in the JSON is half a character (a lone surrogate), not text",
        }
    ]


def test_an_order_too_large_for_a_kafka_message_is_a_413_not_a_503(
    connector: Connector, tmp_path: Path
) -> None:
    # Under the 1 MiB body limit, but its 520,000 tags take more than Kafka's 1,000,000 bytes.
    order = document("shopify_order_ship.json")
    order["tags"] = "t," * 520_000
    body = to_body(order)
    assert len(body) < MAX_BODY
    reply = connector.post_signed(SHOPIFY_PATH, body)
    assert (reply.status, reply.json()) == (
        413,
        {"error": "the order's record is larger than a Kafka message may be"},
    )
    stats = json.loads(connector.app.request("GET", "/stats").body)
    assert stats["answers"].get("shopify.unavailable") is None


def test_a_schema_registry_that_does_not_answer_is_a_503(tmp_path: Path) -> None:
    producer = SendingProducer()
    nowhere = f"http://127.0.0.1:{free_port()}"
    producer.real.codec = Codec.from_url(nowhere, **{"max.retries": 0})
    settings = Settings(data_dir=tmp_path, webhook_secret=SECRET)

    async def build(_stack: contextlib.AsyncExitStack) -> Any:
        return create_app(settings, producer=cast(ContractProducer, producer))

    body = fixture_bytes("shopify_order_ship.json")
    with LoopbackApp(build) as app:
        reply = app.request("POST", SHOPIFY_PATH, body=body, headers=shopify_headers(body, "w"))
    producer.close()
    # The documented answer when the record cannot be delivered now: retry later.
    assert (reply.status, reply.json()["error"]) == (503, "the broker did not confirm the order")
    detail = reply.json()["detail"]  # names the client's error type, e.g. ConnectError
    assert (
        detail.startswith("could not produce the record (") and "see the connector's log" in detail
    )
