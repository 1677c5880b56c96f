"""``dom orders cancel-lines``: what an operator types is checked before anything is sent."""

from __future__ import annotations

from click.testing import CliRunner

from dom.cli import main


def test_cancel_lines_refuses_a_malformed_line_before_sending() -> None:
    env = {"DOM_KAFKA_BOOTSTRAP": "127.0.0.1:1"}  # nothing listens: nothing may be sent
    for bad in ("2", "2:0", "2:-1", ":3", "2:x"):
        result = CliRunner().invoke(
            main,
            ["orders", "cancel-lines", "ORD-1", "--line", bad, "--by", "a", "--reason", "r"],
            env=env,
        )
        assert result.exit_code == 2, (bad, result.output)
        assert "expected LINE_ID:QTY" in result.output


def test_cancel_lines_needs_a_line() -> None:
    result = CliRunner().invoke(main, ["orders", "cancel-lines", "ORD-1", "--reason", "r"])

    assert result.exit_code == 2
    assert "--line" in result.output
