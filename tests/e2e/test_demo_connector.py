"""`dom demo --connector`: the web store's and the marketplace's orders go as signed native
payloads through the HTTP connector (in this process, as `dom connect` runs it), and the
pipeline routes what the connector made of them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from config.settings import Settings
from connectors.demo_cli import demo
from schemas.enums import ROUTING_OUTCOMES
from schemas.models import Channel, Message, OrderPlaced, OrderStatusChanged
from tests.e2e.harness import Pipeline
from tests.e2e.test_webhook import RunningConnector

SECRET = "demo-e2e-secret"


def test_demo_through_the_connector(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings(webhook_secret=SECRET)
    pipeline = Pipeline(settings, tmp_path)
    pipeline.start_worker("w1")
    try:
        env = {
            "DOM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "DOM_TOPIC_PREFIX": settings.topic_prefix,
            "DOM_TOPIC_PARTITIONS": str(settings.topic_partitions),
            "DOM_DATA_DIR": str(settings.data_dir),
            "DOM_WEBHOOK_SECRET": SECRET,
        }
        with RunningConnector(settings) as connector:
            args = ["--skus", "150", "--stores", "4", "--rate", "15", "--duration", "8"]
            args += ["--seed", "5", "--report-every", "4", "--connector", connector.url("")]
            result = CliRunner().invoke(demo, args, env=env, catch_exceptions=False)
            assert result.exit_code == 0, result.output
            _, stats = connector.get("/stats")
        assert "through http://127.0.0.1:" in result.output
        assert "; connector: 202 " in result.output  # the periodic line counts the answers
        answers = stats["answers"]
        assert answers.get("shopify.accepted", 0) > 10, stats
        assert answers.get("marketplace.accepted", 0) > 3, stats
        assert set(answers) <= {"shopify.accepted", "marketplace.accepted"}, stats
        assert stats["delivery"]["failed"] == 0

        placed = [
            pipeline.codec.decode(m.value())
            for m in pipeline.read_changelog_messages("dom.orders.v1")
        ]
        orders = {o.order_id: o for o in placed if isinstance(o, OrderPlaced)}
        by_channel = Counter(o.channel for o in orders.values())
        assert by_channel[Channel.WEB] == answers["shopify.accepted"]
        assert by_channel[Channel.MARKETPLACE] == answers["marketplace.accepted"]
        assert set(by_channel) == set(Channel)  # the other channels still produce directly
        for order in orders.values():
            if order.channel is Channel.WEB:  # what the connector made of a Shopify webhook
                assert order.order_id.startswith("WEB-")
                assert order.event_id.startswith("shopify-orders-create-")
            elif order.channel is Channel.MARKETPLACE:
                assert order.order_id.startswith("MKT-")
                assert order.event_id.startswith("marketplace-order-placed-")

        def routed(records: list[Message]) -> set[str]:
            return {
                r.order_id[:4]
                for r in records
                if isinstance(r, OrderStatusChanged) and r.status.value in ROUTING_OUTCOMES
            }

        statuses = pipeline.read(
            "dom.order-status.v1", lambda rs: {"WEB-", "MKT-"} <= routed(rs), timeout=60
        )
        assert {"WEB-", "MKT-"} <= routed(statuses), pipeline.workers["w1"].log_tail()
    finally:
        pipeline.stop_all()
