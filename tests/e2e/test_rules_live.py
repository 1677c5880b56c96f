"""Rules change live, on the real broker, through the operators' own command line: a
published rule affects the next order without a restart, a broken one is refused with its
error while the previous version stays in force, a tombstone deletes; and a dry-run shows
what a rule file would change, emitting nothing."""

from __future__ import annotations

import json
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from config.settings import Settings
from connectors.producer import ContractProducer
from dom.cli import main
from schemas.commands import PackagingCommand
from schemas.enums import RuleStage
from schemas.models import OrderPlaced, OrderStatusChanged, RuleAction
from tests.e2e.harness import Pipeline
from tests.e2e.world import one_dc
from tests.unit.factories import (
    make_order,
    make_rule,
)

PROTECTIVE_RULE = """
rules:
  - id: protect-everything
    stage: PACKAGING
    priority: 10
    when: order.total > 0
    then:
      - set_packaging: PROTECTIVE
    description: While the new boxes are tested, everything ships padded
"""

DRY_RUN_RULES = """
rules:
  - id: hold-over-900
    stage: ROUTING
    when: order.total >= 900
    then:
      - hold: needs a second look
  - id: gold-code
    stage: MARKETING
    when: customer.tier == "GOLD"
    then:
      - add_discount_code: GOLD10
"""


def dom(settings: Settings, *args: str) -> str:
    env = {
        "DOM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "DOM_TOPIC_PREFIX": settings.topic_prefix,
    }
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def live_rules(pipeline: Pipeline, worker: str = "w1") -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(pipeline.url(worker, "/rules/")) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def wait_for_rules(  # type: ignore[no-untyped-def]
    pipeline: Pipeline, done, timeout: float = 30.0, worker: str = "w1"
) -> tuple[dict, float]:  # type: ignore[type-arg]
    """Poll the worker's /rules/ until ``done(body)``; return it and the seconds it took."""
    started = time.monotonic()
    while True:
        body = live_rules(pipeline, worker)
        if done(body) or time.monotonic() - started > timeout:
            return body, time.monotonic() - started
        time.sleep(0.1)


def packaging_of(pipeline: Pipeline, order_id: str) -> PackagingCommand:
    packs = pipeline.read(
        "dom.packaging.commands.v1", lambda r: any(p.order_id == order_id for p in r)
    )
    [pack] = [p for p in packs if isinstance(p, PackagingCommand) and p.order_id == order_id]
    return pack


def order(order_id: str, total: str = "20.00") -> OrderPlaced:
    return make_order(order_id, lines=[("SKU-1", 1)], order_total=Decimal(total))


def test_rules_change_live_and_a_dry_run_shows_what_a_file_would_change(
    pipeline: Pipeline, settings: Settings, tmp_path: Path
) -> None:
    one_dc(pipeline, {"SKU-1": 100})
    pipeline.produce([order("ORD-1")])
    assert packaging_of(pipeline, "ORD-1").packaging == "STANDARD"

    # publish: the next order is packed as the rule says, with no restart
    rule_file = tmp_path / "protect.yaml"
    rule_file.write_text(PROTECTIVE_RULE)
    assert "published  protect-everything version 1" in dom(
        settings, "rules", "publish", str(rule_file), "--by", "ops-anna"
    )
    body, took = wait_for_rules(pipeline, lambda b: len(b["rules"]) == 1)
    assert body["rules"][0]["updated_by"] == "ops-anna", body
    print(f"\nrule applied by the worker {took:.2f}s after publish returned")
    pipeline.produce([order("ORD-2")])
    pack = packaging_of(pipeline, "ORD-2")
    assert pack.packaging == "PROTECTIVE" and pack.rules_fired == ("protect-everything",)
    assert all(c.box_type.startswith("PADDED") for c in pack.cartons)
    assert "protect-everything" in dom(settings, "rules", "list")

    # a broken version from an upstream system: refused, reported, the old one holds
    broken = make_rule(
        "protect-everything",
        version=2,
        stage=RuleStage.PACKAGING,
        condition="order.totl > 0",
        actions=(RuleAction(type="set_packaging", params={"type": "GIFT"}),),
    )
    with ContractProducer(settings) as producer:
        producer.send(broken)
    [letter] = pipeline.read_raw("dom.dlq.v1", expected=1)
    error = dict(letter.headers())["dom.error"].decode()
    assert "unknown field order.totl" in error and "did you mean order.total" in error, error
    body, _ = wait_for_rules(pipeline, lambda b: b["refused"])
    assert "order.totl" in body["refused"][0]["error"]
    assert body["rules"][0]["version"] == 1
    pipeline.produce([order("ORD-3")])
    assert packaging_of(pipeline, "ORD-3").packaging == "PROTECTIVE"

    # a dry-run of another file against the live set, on a file of orders
    orders_file = tmp_path / "orders.jsonl"
    orders_file.write_text(
        "\n".join(
            json.dumps(o.model_dump(mode="json"))
            for o in (order("D-SMALL", "20.00"), order("D-BIG", "950.00"))
        )
    )
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(DRY_RUN_RULES)
    report = dom(settings, "rules", "dry-run", str(proposed), "--orders", str(orders_file))
    assert "2 orders replayed; 2 would change" in report, report
    lines = report.splitlines()
    assert any("D-BIG" in x and "outcome" in x and "ALLOCATED  ->  ON_HOLD" in x for x in lines)
    assert any("D-SMALL" in x and "inserts" in x and "DISCOUNT_CODE:GOLD10" in x for x in lines)
    assert not any(line.startswith("D-SMALL") and "outcome" in line for line in lines)

    # disable, then delete with a tombstone: the next order is standard again
    assert "disabled  protect-everything version 3" in dom(
        settings, "rules", "disable", "protect-everything", "--by", "ops-anna"
    )
    wait_for_rules(pipeline, lambda b: not b["rules"][0]["enabled"])
    pipeline.produce([order("ORD-4")])
    assert packaging_of(pipeline, "ORD-4").packaging == "STANDARD"
    dom(settings, "rules", "delete", "protect-everything")
    body, _ = wait_for_rules(pipeline, lambda b: not b["rules"])
    assert body["rules"] == []
    assert "0 rule(s)" in dom(settings, "rules", "list")

    # the dry-run emitted nothing: only the four real orders have outcomes
    statuses = pipeline.read("dom.order-status.v1", lambda r: len(r) >= 8)
    routed = {s.order_id for s in statuses if isinstance(s, OrderStatusChanged)}
    assert routed == {"ORD-1", "ORD-2", "ORD-3", "ORD-4"}
