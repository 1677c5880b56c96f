"""A rule too costly to run on every order stalls nothing (issue 17), on the real broker: five
nested ``all()`` took 17 s to check and would have taken as long on every order. Published on
``dom.rules.v1`` as an upstream system would, it is dead-lettered with the reason and refused
by the worker, the rules in force stay in force, and an order placed afterwards is routed. A
rule in force that fails on an order does not fire and is counted on the worker's /metrics."""

from __future__ import annotations

import re
import time
import urllib.request

from config.settings import Settings
from connectors.producer import ContractProducer
from schemas.enums import OrderStatus
from schemas.models import RuleAction
from tests.e2e.harness import Pipeline
from tests.e2e.test_poison_rules import PROTECT, assert_alive, place, routed, worker_rules
from tests.unit.factories import make_location, make_product, make_rule, make_stock_event
from tests.unit.test_rules_cost import SEVENTEEN_SECONDS

REASON = re.compile(
    r"condition is too costly to run on every order: up to [\d,]+ steps on the largest order "
    r"the rules judge, the limit is 6,000 \(its comprehensions nest 5 deep: "
)
THIRD_LINE = make_rule(
    "third-line-hazmat",
    condition="lines[2].hazmat",  # fails on an order of fewer lines: it must not hold them all
    actions=(RuleAction(type="hold", params={"reason": "hazmat third line"}),),
)


def rule_errors(pipeline: Pipeline, rule_id: str) -> float:
    """dom_rule_errors_total{rule_id, kind="error"} on the worker's /metrics, once above 0."""
    series = f'dom_rule_errors_total{{kind="error",rule_id="{rule_id}"}} '
    deadline = time.monotonic() + 30
    while True:
        with urllib.request.urlopen(pipeline.url("w1", "/metrics")) as response:
            text = response.read().decode()
        found = [line for line in text.splitlines() if line.startswith(series)]
        if found or time.monotonic() > deadline:
            return float(found[0].split()[-1]) if found else 0.0
        time.sleep(0.2)


def test_a_costly_rule_is_dead_lettered_and_orders_keep_being_routed(
    pipeline: Pipeline, settings: Settings
) -> None:
    pipeline.produce(
        [
            make_location("DC-EAST"),
            make_product("SKU-1"),
            make_stock_event(sku="SKU-1", location_id="DC-EAST", quantity=100),
        ]
    )
    with ContractProducer(settings) as producer:
        producer.send_all([PROTECT, THIRD_LINE, make_rule("costly", condition=SEVENTEEN_SECONDS)])
    assert producer.report.failed == 0, producer.report.errors

    [letter] = pipeline.read_raw("dom.dlq.v1", expected=1)
    assert letter.key() == b"costly"
    error = dict(letter.headers())["dom.error"].decode()
    assert REASON.search(error) and error.endswith("(version 1 refused)"), error
    body = worker_rules(pipeline, lambda b: bool(b["refused"]) and len(b["rules"]) == 2)
    [refused] = body["refused"]
    assert refused["rule_id"] == "costly" and REASON.match(refused["error"]), body
    in_force = sorted(r["rule_id"] for r in body["rules"])
    assert in_force == ["protect-everything", "third-line-hazmat"]

    place(pipeline, "ORD-1")
    assert routed(pipeline, "ORD-1") == (OrderStatus.ALLOCATED, "PROTECTIVE")
    assert rule_errors(pipeline, "third-line-hazmat") >= 1
    assert_alive(pipeline)
