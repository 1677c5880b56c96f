"""Report windows in the retailer's time zone: local hours and days, days of 23 and 25 hours
when Europe/Berlin changes its clocks, and which windows the retention has expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from streams.core.kpis.windows import (
    Grain,
    is_expired,
    retention_cutoff,
    window_end,
    window_start,
    windows,
)

BERLIN = ZoneInfo("Europe/Berlin")
HOUR, DAY = Grain.HOUR, Grain.DAY


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_a_window_is_named_by_its_local_start_with_its_offset() -> None:
    at = utc(2024, 5, 1, 22, 30)  # 00:30 on 2 May in Berlin (CEST, +02:00)
    assert window_start(at, DAY, BERLIN).isoformat() == "2024-05-02T00:00:00+02:00"
    assert window_start(at, HOUR, BERLIN).isoformat() == "2024-05-02T00:00:00+02:00"
    assert window_start(utc(2024, 5, 1, 21, 59), DAY, BERLIN).isoformat() == (
        "2024-05-01T00:00:00+02:00"
    )


def test_the_day_clocks_go_back_lasts_25_hours_and_its_repeated_hour_is_two_windows() -> None:
    first = utc(2024, 10, 27, 0, 30)  # 02:30 CEST
    second = utc(2024, 10, 27, 1, 30)  # 02:30 CET, an hour later
    assert window_start(first, HOUR, BERLIN).isoformat() == "2024-10-27T02:00:00+02:00"
    assert window_start(second, HOUR, BERLIN).isoformat() == "2024-10-27T02:00:00+01:00"
    assert window_start(first, HOUR, BERLIN) != window_start(second, HOUR, BERLIN)

    day = window_start(first, DAY, BERLIN)
    assert day == window_start(second, DAY, BERLIN)
    assert day.isoformat() == "2024-10-27T00:00:00+02:00"
    assert window_end(day, DAY, BERLIN).isoformat() == "2024-10-28T00:00:00+01:00"
    assert window_end(day, DAY, BERLIN) - day == timedelta(hours=25)
    assert len(list(windows(day, window_end(day, DAY, BERLIN), HOUR, BERLIN))) == 25


def test_the_day_clocks_go_forward_lasts_23_hours() -> None:
    day = window_start(utc(2024, 3, 31, 12), DAY, BERLIN)
    assert day.isoformat() == "2024-03-31T00:00:00+01:00"
    end = window_end(day, DAY, BERLIN)
    assert end.isoformat() == "2024-04-01T00:00:00+02:00"
    hours = [h.isoformat() for h in windows(day, end, HOUR, BERLIN)]
    assert len(hours) == 23
    assert "2024-03-31T02:00:00+01:00" not in hours  # 02:00 does not happen that night
    assert hours[2] == "2024-03-31T03:00:00+02:00"


def test_a_window_key_reads_back_as_the_same_window() -> None:
    start = window_start(utc(2024, 10, 27, 1, 30), HOUR, BERLIN)
    assert datetime.fromisoformat(start.isoformat()) == start
    assert window_start(start, HOUR, BERLIN) == start


def test_windows_lists_the_starts_inside_the_period_only() -> None:
    start, end = utc(2024, 5, 1, 10, 30), utc(2024, 5, 1, 13, 0)
    assert [w.isoformat() for w in windows(start, end, HOUR, BERLIN)] == [
        "2024-05-01T13:00:00+02:00",
        "2024-05-01T14:00:00+02:00",
    ]


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        window_start(datetime(2024, 5, 1, 12), DAY, BERLIN)


def test_a_window_expires_once_it_ended_more_than_the_retention_ago() -> None:
    now = utc(2024, 5, 31, 10)  # 12:00 in Berlin
    cutoff = retention_cutoff(now, DAY, BERLIN, 30)
    assert cutoff.isoformat() == "2024-05-01T00:00:00+02:00"
    assert is_expired(window_start(utc(2024, 4, 30, 12), DAY, BERLIN), DAY, BERLIN, now, 30)
    assert not is_expired(cutoff, DAY, BERLIN, now, 30)
    hour = window_start(utc(2024, 5, 1, 9, 15), HOUR, BERLIN)  # 11:00, ended just 30 days ago
    assert hour.isoformat() == "2024-05-01T11:00:00+02:00"
    assert is_expired(hour, HOUR, BERLIN, now, 30)
    assert not is_expired(window_end(hour, HOUR, BERLIN), HOUR, BERLIN, now, 30)
