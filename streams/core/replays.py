"""What a stage's stored value has read, so that a replay of inputs from far back is skipped.

A stage applies its inputs in batches, and a batch's records all go out before the next batch
begins (``streams/runtime/outbox.py``). So of the inputs a key read from a partition, those
before a batch that read that partition began there are done: their effect is in the value
and their records went out. (Only of the partitions the batch read: the last batch that read
another may be one of a run of the stage killed before its records went out.) A replay of one
(a restart after a commit that came late, a consumer group rewound by hand) must be skipped
whole: the ids a value remembers for de-duplication are a bounded window and may have
forgotten it. Only the inputs of the key's last batch of each partition are replayed the usual
way, by their ids.

The marks live in the value they protect (one per input partition of the key, ``topic:partition``
-> (first offset not known done, last offset read, newest input time read in ms)), so they are
as durable as the value, restored with it, and never ahead of it.
"""

from __future__ import annotations

from collections.abc import Mapping

Marks = Mapping[str, tuple[int, int, int]]


def done_before(marks: Marks, source: str, offset: int, at_ms: int) -> bool:
    """Whether the input at ``offset`` of ``source`` (at ``at_ms``) is done (see the module
    docstring). An input newer than every one read there is not, whatever its offset: the
    offsets of a topic deleted and made again start at 0 anew."""
    mark = marks.get(source)
    return mark is not None and offset < mark[0] and at_ms <= mark[2]


def rereads(marks: Marks, batch_from: Mapping[str, int]) -> bool:
    """Whether a batch that began at ``batch_from`` (per partition it reads) reads again what
    an earlier batch of the key read: in one of those partitions the key read at or past where
    the batch began. That earlier batch's records may never have gone out (the stage was
    killed, or stopped before its inputs were acknowledged): what it published must be
    published again. Consecutive batches never overlap, so this holds only of a replay."""
    return any(
        mark[1] >= began
        for name, mark in marks.items()
        if (began := batch_from.get(name)) is not None
    )


def note_read(
    marks: Marks, source: str, offset: int, at_ms: int, batch_from: Mapping[str, int]
) -> Marks:
    """The marks after the input at ``offset`` of ``source`` (at ``at_ms``), applied in a batch
    that began at ``batch_from`` in each partition it read (``marks`` itself when unchanged).

    Of a partition the batch reads, the inputs before the batch began there are done (the
    first batch of a run begins at the committed offset), so all the key read there when the
    batch read none of them. Of a partition the batch does not read, nothing more is known: the
    last batch that read it may be one of a run of the stage that was killed before its records
    went out. What was done stays done; the input itself never is, whatever the caller says
    the batch's start was (it is at or past what was done, or it would have been skipped)."""
    updated = dict(marks)
    old = updated.get(source)
    last, newest = (offset, at_ms) if old is None else (max(old[1], offset), max(old[2], at_ms))
    updated[source] = (0 if old is None else old[0], last, newest)
    for name, (done_to, read, time_ms) in updated.items():
        began = batch_from.get(name)
        if name == source:
            began = offset if began is None else min(began, offset)
        if began is None:  # not read in this batch: what a batch of an earlier run of the
            continue  # stage read there may not have gone out (it was killed meanwhile)
        first = began if read >= began else read + 1
        # What was done stays done: a batch that replays inputs from before the last one
        # (a rewound group) begins below what is known done, and lowers nothing.
        updated[name] = (max(done_to, first), read, time_ms)
    return marks if updated == marks else updated
