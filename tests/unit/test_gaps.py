"""The gaps a fetch passed over: a gap they cover is no hole, anything else still is."""

from collections.abc import Iterator

import pytest

from streams.runtime import gaps


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    gaps.forget()
    yield
    gaps.forget()


def test_a_marker_between_two_records_is_known() -> None:
    gaps.note("orders", 0, 5, 6)
    assert gaps.known("orders", 0, 5, 6)
    assert not gaps.known("orders", 1, 5, 6)  # another partition
    assert not gaps.known("orders", 0, 4, 6)  # a record Faust dropped before the marker


def test_a_run_of_markers_is_one_range_and_a_gap_across_it_is_known() -> None:
    for offset in range(10, 20):
        gaps.note("orders", 0, offset, offset + 1)
    assert gaps.known("orders", 0, 10, 20)
    assert not gaps.known("orders", 0, 10, 21)


def test_ranges_apart_cover_only_what_they_cover() -> None:
    gaps.note("orders", 0, 3, 4)
    gaps.note("orders", 0, 7, 9)
    assert gaps.known("orders", 0, 7, 9)
    assert not gaps.known("orders", 0, 3, 9)  # 4..6 were records: a hole


def test_the_oldest_notes_give_way_and_their_gaps_are_read_back() -> None:
    for n in range(gaps.KEEP + 1):
        gaps.note("changelog", 0, 2 * n, 2 * n + 1)
    assert not gaps.known("changelog", 0, 0, 1)  # pushed out: filled, slower, never wrong
    assert gaps.known("changelog", 0, 2 * gaps.KEEP, 2 * gaps.KEEP + 1)
