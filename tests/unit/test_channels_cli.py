"""``dom channels`` without a broker: a bad policy file or option is refused before anything is
read or sent, and ``publish-defaults`` publishes only what differs from the policies in force."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from config.settings import Settings
from dom import channels_cli
from dom.cli import main
from schemas.enums import Channel
from schemas.sellable import ChannelPolicy
from tests.unit.factories import make_channel_policy


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[ChannelPolicy]]:
    """The policies in force (``live``) and what the command published (``sent``)."""
    state: dict[str, list[ChannelPolicy]] = {"live": [], "sent": []}

    def live(settings: Settings) -> dict[str, ChannelPolicy]:
        return {p.channel.value: p for p in state["live"]}

    monkeypatch.setattr(channels_cli, "live_policies", live)
    monkeypatch.setattr(channels_cli, "_produce", lambda s, records: state["sent"].extend(records))
    return state


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["channels", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_a_policy_file_with_problems_is_refused_with_each_of_them(
    tmp_path: Path, broker: dict[str, list[ChannelPolicy]]
) -> None:
    bad = tmp_path / "channels.yaml"
    bad.write_text("channels:\n  - channel: MARKET\n  - channel: WEB\n    buffer_units: -1\n")
    code, output = run("publish-defaults", str(bad))
    assert code == 1
    assert "entry 1: channel: Input should be 'WEB'" in output
    assert "entry 2: buffer_units: Input should be greater than or equal to 0" in output
    assert broker["sent"] == []


def test_publishing_the_defaults_twice_publishes_them_once(
    broker: dict[str, list[ChannelPolicy]],
) -> None:
    code, output = run("publish-defaults", "--by", "ops")
    assert code == 0, output
    assert [p.channel for p in broker["sent"]] == [Channel.MARKETPLACE]  # the rest: the default
    assert "published  MARKETPLACE  DC; buffer 2 units" in output
    broker["live"], broker["sent"] = broker["sent"], []
    code, output = run("publish-defaults")
    assert code == 0 and broker["sent"] == []
    assert "unchanged  MARKETPLACE" in output


def test_only_missing_leaves_a_policy_an_operator_set_alone(
    broker: dict[str, list[ChannelPolicy]],
) -> None:
    broker["live"] = [make_channel_policy(buffer_units=7)]
    run("publish-defaults", "--only-missing")
    assert broker["sent"] == []
    run("publish-defaults")  # without it, the file wins
    assert [(p.channel, p.buffer_units) for p in broker["sent"]] == [(Channel.MARKETPLACE, 2)]


def test_set_changes_only_what_it_is_given(broker: dict[str, list[ChannelPolicy]]) -> None:
    broker["live"] = [make_channel_policy(buffer_units=2)]
    code, output = run("set", "marketplace", "--buffer-pct", "10", "--by", "ops-anna")
    assert code == 0, output
    [policy] = broker["sent"]
    assert (policy.location_kinds, policy.buffer_units, policy.buffer_pct) == (("DC",), 2, 10)
    assert policy.updated_by == "ops-anna"
    run("set", "MARKETPLACE", "--kinds", "", "--locations", "DC-1, ST-9")
    assert (broker["sent"][-1].location_kinds, broker["sent"][-1].location_ids) == (
        (),
        ("DC-1", "ST-9"),
    )


def test_a_bad_option_is_refused_before_anything_is_sent(
    broker: dict[str, list[ChannelPolicy]],
) -> None:
    assert run("set", "WEB", "--kinds", "WAREHOUSE")[0] == 2
    assert run("set", "WEB", "--buffer-pct", "101")[0] == 2
    assert run("set", "MARS", "--buffer-units", "1")[0] == 2
    assert broker["sent"] == []
