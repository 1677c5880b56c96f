"""`dom bench --profile`'s summary of py-spy's collapsed stacks, on hand-written stacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dom.bench_profile import (
    Profile,
    frame_key,
    profile_of_texts,
    read_profile,
    render_tables,
    top_self_json,
)
from dom.bench_report import BenchResult, parse_json_line

LOOP = "run_forever (asyncio/base_events.py:608)"
PROCESS = "Outbox.process (streams/outbox.py:88)"
BATCH = "Outbox._batch (streams/outbox.py:141)"
ENCODE = "Codec.encode (schemas/codec.py:52)"

# 10 samples: 5 in _batch's own code, 3 in encode under _batch, 2 in the loop itself.
STACKS = f"""\
{LOOP};{PROCESS};{BATCH} 5
{LOOP};{PROCESS};{BATCH};{ENCODE} 3
{LOOP} 2
"""


def shares(pairs: list[tuple[str, float]]) -> dict[str, float]:
    return dict(pairs)


def test_self_share_is_the_leaf_frame_over_all_samples() -> None:
    profile = profile_of_texts([STACKS])

    assert profile.samples == 10
    assert profile.top_self(10) == [
        ("Outbox._batch (streams/outbox.py)", 50.0),
        ("Codec.encode (schemas/codec.py)", 30.0),
        ("run_forever (asyncio/base_events.py)", 20.0),
    ]


def test_inclusive_share_counts_every_frame_on_the_stack() -> None:
    inclusive = shares(profile_of_texts([STACKS]).top_inclusive(10))

    assert inclusive == {
        "run_forever (asyncio/base_events.py)": 100.0,
        "Outbox.process (streams/outbox.py)": 80.0,
        "Outbox._batch (streams/outbox.py)": 80.0,
        "Codec.encode (schemas/codec.py)": 30.0,
    }


def test_top_n_keeps_the_largest_and_orders_ties_by_name() -> None:
    profile = profile_of_texts([STACKS])

    assert [frame for frame, _ in profile.top_inclusive(3)] == [
        "run_forever (asyncio/base_events.py)",
        "Outbox._batch (streams/outbox.py)",
        "Outbox.process (streams/outbox.py)",
    ]


def test_a_recursive_function_counts_once_per_sample() -> None:
    fib = "fib (toy.py:6)"
    profile = profile_of_texts([f"main (toy.py:10);{fib};{fib};{fib} 4\nmain (toy.py:10) 4\n"])

    assert shares(profile.top_inclusive(5)) == {"main (toy.py)": 100.0, "fib (toy.py)": 50.0}
    assert shares(profile.top_self(5)) == {"fib (toy.py)": 50.0, "main (toy.py)": 50.0}


def test_line_numbers_of_one_function_are_merged() -> None:
    text = (
        "Outbox._batch (streams/outbox.py:141) 3\n"
        "Outbox._batch (streams/outbox.py:150) 1\n"
        "Outbox._apply (streams/outbox.py:141) 4\n"
    )

    assert shares(profile_of_texts([text]).top_self(5)) == {
        "Outbox._batch (streams/outbox.py)": 50.0,
        "Outbox._apply (streams/outbox.py)": 50.0,
    }


@pytest.mark.parametrize(
    ("frame", "key"),
    [
        ("Outbox._batch (streams/outbox.py:141)", "Outbox._batch (streams/outbox.py)"),
        ("<module> (dom)", "<module> (dom)"),  # a script without a line number stays as it is
        ("f (a:1/b.py:7)", "f (a:1/b.py)"),  # only the final :NNN goes
    ],
)
def test_frame_key_drops_only_the_line_number(frame: str, key: str) -> None:
    assert frame_key(frame) == key


def test_several_files_are_added_up(tmp_path: Path) -> None:
    (tmp_path / "w1.raw").write_text(f"{LOOP};{BATCH} 6\n")
    (tmp_path / "w2.raw").write_text(f"{LOOP};{ENCODE} 2\n{LOOP} 2\n")

    profile = read_profile(sorted(tmp_path.glob("*.raw")))

    assert profile.samples == 10
    assert shares(profile.top_self(5)) == {
        "Outbox._batch (streams/outbox.py)": 60.0,
        "Codec.encode (schemas/codec.py)": 20.0,
        "run_forever (asyncio/base_events.py)": 20.0,
    }
    assert shares(profile.top_inclusive(1)) == {"run_forever (asyncio/base_events.py)": 100.0}


def test_lines_without_a_count_are_skipped() -> None:
    text = f"\n{BATCH} 2\nnot a stack\n{BATCH} x\n  \n{ENCODE} 2\n"

    profile = profile_of_texts([text])

    assert profile.samples == 4
    assert shares(profile.top_self(5)) == {
        "Outbox._batch (streams/outbox.py)": 50.0,
        "Codec.encode (schemas/codec.py)": 50.0,
    }


def test_no_samples_give_empty_tables_and_no_division_by_zero() -> None:
    profile = profile_of_texts(["", "\n"])

    assert profile.samples == 0
    assert profile.top_self(10) == [] and profile.top_inclusive(10) == []
    assert top_self_json(profile) == []
    tables = render_tables(profile)
    assert [t.row_count for t in tables] == [0, 0]
    assert all("0 samples" in str(t.title) for t in tables)


def test_tables_hold_the_top_frames_with_their_shares() -> None:
    self_table, inclusive_table = render_tables(profile_of_texts([STACKS]))

    assert self_table.row_count == 3 and inclusive_table.row_count == 4
    assert list(self_table.columns[0].cells) == ["50.0", "30.0", "20.0"]
    frames = [str(c) for c in self_table.columns[1].cells]
    assert frames == [
        "Outbox._batch (streams/outbox.py)",
        "Codec.encode (schemas/codec.py)",
        "run_forever (asyncio/base_events.py)",
    ]


def test_top_self_json_is_frame_and_rounded_percent() -> None:
    profile = profile_of_texts([f"{BATCH} 1\n{ENCODE} 2\n"])

    assert top_self_json(profile, 1) == [["Codec.encode (schemas/codec.py)", 66.67]]


def test_profile_key_comes_last_and_leaves_the_other_keys_alone() -> None:
    plain = parse_json_line(BenchResult().json_line())
    profile: Profile = profile_of_texts([STACKS])

    line = BenchResult().json_line({"profile_top_self": top_self_json(profile)})
    figures = parse_json_line(line)

    assert list(figures) == [*plain, "profile_top_self"]
    assert figures["profile_top_self"][0] == ["Outbox._batch (streams/outbox.py)", 50.0]
    assert json.loads(BenchResult().to_json()) == plain


def test_the_floor_ceiling_is_floor_messages_over_the_pipelines_messages_per_order() -> None:
    result = BenchResult(
        floor_msgs_per_s=9_000.0, pipeline_messages_per_order=15.0, pipeline_msgs_per_s=2_700.0
    )
    result.finish_ratios()
    assert result.floor_orders_per_s_ceiling == 600.0
    assert result.ratio_vs_floor == 0.3  # 180 orders/s of a 600 orders/s ceiling

    unmeasured = BenchResult(floor_msgs_per_s=9_000.0)  # no pipeline messages: no ceiling
    unmeasured.finish_ratios()
    assert unmeasured.floor_orders_per_s_ceiling == 0.0
