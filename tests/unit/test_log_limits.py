"""A client error repeated in a tight loop reaches the log once per period, with a count."""

import logging

from streams.runtime.log_limits import RepeatLimit


def record(text: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("aiokafka.client", logging.ERROR, "x", 1, text, args, None)


def test_a_repeated_line_passes_once_per_period_and_counts_what_it_held_back() -> None:
    now = [0.0]
    limit = RepeatLimit(period=10.0, clock=lambda: now[0])
    passed = []
    for step in range(2500):  # 25 s of a line every 10 ms, with changing arguments
        now[0] = step / 100
        line = record("Unable connect to node with id %s: %s", 1, f"refused {step}")
        if limit.filter(line):
            passed.append(line.getMessage())
    assert len(passed) == 3  # at 0 s, 10 s and 20 s
    assert passed[1].endswith("(999 more like it in the last 10s)")


def test_other_lines_pass_on_their_own() -> None:
    limit = RepeatLimit(period=10.0, clock=lambda: 0.0)
    assert limit.filter(record("Unable connect to node with id %s", 1))
    assert limit.filter(record("Unable to update metadata from %s", [1]))
    assert not limit.filter(record("Unable connect to node with id %s", 2))


def test_the_clients_own_loggers_are_limited(caplog) -> None:  # type: ignore[no-untyped-def]
    import aiokafka.client

    from streams.runtime.log_limits import limit_client_logs

    limit_client_logs()
    with caplog.at_level(logging.ERROR):
        for n in range(100):  # what aiokafka's client logs in a loop while the broker is away
            aiokafka.client.log.error("Unable connect to node with id %s: %s", 1, n)
    assert len([r for r in caplog.records if "Unable connect" in r.getMessage()]) == 1
