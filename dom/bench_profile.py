"""Where the workers spent their time during ``dom bench --profile``: py-spy's raw (collapsed)
stacks, summed into self and inclusive shares per function.

A collapsed line is ``frame;frame;...;frame COUNT``, root first and the leaf last, each frame
like ``Outbox._batch (streams/runtime/outbox.py:141)``. Frames are grouped by function and file with
the line number dropped, so a function whose samples fall on several lines is one row.

Shares are percentages of all samples (every stack line's count, over every file given):

self
    samples with the frame at the leaf: time spent in the function's own code;
inclusive
    samples with the frame anywhere in the stack, counted once per sample even when the
    function recurses, so no share exceeds 100 %.

Pure: text in, figures and rich tables out; reading the files is the only I/O.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOP_SELF = 25
TOP_INCLUSIVE = 40
TOP_SELF_JSON = 10

# The ``:NNN`` just before the closing parenthesis of ``func (file.py:NNN)``.
_LINE_NUMBER = re.compile(r":\d+(?=\)$)")


def frame_key(frame: str) -> str:
    """The frame without its line number: ``Outbox._batch (streams/runtime/outbox.py)``."""
    return _LINE_NUMBER.sub("", frame.strip())


def parse_collapsed(text: str) -> Iterable[tuple[list[str], int]]:
    """(frames root first, sample count) per line; lines without a count are skipped."""
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if stack and count.isdigit():
            yield [frame_key(f) for f in stack.split(";") if f.strip()], int(count)


@dataclass
class Profile:
    """Sample counts of one or more collapsed-stack files, per frame (line numbers merged)."""

    samples: int = 0
    self_counts: Counter[str] = field(default_factory=Counter)
    inclusive_counts: Counter[str] = field(default_factory=Counter)

    def add(self, text: str) -> None:
        for frames, count in parse_collapsed(text):
            if not frames:
                continue
            self.samples += count
            self.self_counts[frames[-1]] += count
            for frame in set(frames):  # a recursive function is in the sample once
                self.inclusive_counts[frame] += count

    def top_self(self, n: int) -> list[tuple[str, float]]:
        """The ``n`` frames with the most self time, as (frame, percent of all samples)."""
        return self._top(self.self_counts, n)

    def top_inclusive(self, n: int) -> list[tuple[str, float]]:
        """The ``n`` frames with the most inclusive time, as (frame, percent of all samples)."""
        return self._top(self.inclusive_counts, n)

    def _top(self, counts: Counter[str], n: int) -> list[tuple[str, float]]:
        if self.samples == 0:
            return []
        # Ties by name, so the same stacks always give the same order.
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        return [(frame, 100 * count / self.samples) for frame, count in ranked]


def profile_of_texts(texts: Iterable[str]) -> Profile:
    profile = Profile()
    for text in texts:
        profile.add(text)
    return profile


def read_profile(paths: Iterable[Path]) -> Profile:
    """The profile of every file of ``paths`` added up (one file per worker)."""
    return profile_of_texts(p.read_text(errors="replace") for p in paths)


def top_self_json(profile: Profile, n: int = TOP_SELF_JSON) -> list[list[Any]]:
    """``[[frame, percent], ...]`` for the ``BENCH_JSON`` line."""
    return [[frame, round(share, 2)] for frame, share in profile.top_self(n)]


def render_tables(profile: Profile) -> list[Any]:
    """The top self-time and top inclusive-time frames, as two rich tables."""
    return [
        _table(f"self time, top {TOP_SELF}", profile, profile.top_self(TOP_SELF)),
        _table(
            f"inclusive time, top {TOP_INCLUSIVE}",
            profile,
            profile.top_inclusive(TOP_INCLUSIVE),
        ),
    ]


def _table(title: str, profile: Profile, rows: list[tuple[str, float]]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"profile: {title} ({profile.samples:,} samples)")
    table.add_column("%", justify="right")
    table.add_column("frame", overflow="fold")
    for frame, share in rows:
        table.add_row(f"{share:.1f}", Text(frame))  # Text: a frame is never read as markup
    return table
