"""Each fix of :mod:`streams.runtime.faust_fixes` that closes a rebalance or commit race,
against the loss it prevents: a minimal Faust app (``tests/integration/fix_probe_app.py``) with
nothing else between Faust and the loss, stepped into the window the fix closes rather than
timed into it.

Each fix is tested twice: with every fix, nothing is lost; without the one under test (the
others in place), records are lost, which is what the fix is for. Each test first waits for
the probe's log to say its step landed.

The seek, paused-fetch and refused-ack tests: four partitions hold a first wave of records
nobody has read, and worker w1 fetches them. For the seek and the acks, w1 holds the first
record it gets while w2 joins the group, so the records fetched with it are still unprocessed
when the partitions are revoked. Then a second wave is produced and read to its end on every
partition: a partition read on past the first wave shows that a record of the first wave
with no output is lost for good.

The drain test: w1 reads the first wave with its first table write held on its way to the
broker, and is SIGKILLed as soon as its group has committed. A committed record whose table
write is not in the changelog is lost for good: no worker reads it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from config.settings import Settings
from dom.admin import create_topics
from dom.topic_reader import latest_by_key, read_to_end
from schemas.topics import Direction, Topic
from tests.conftest import free_port
from tests.integration.kafka_io import Record, committed_offsets, consume, produce
from tests.integration.workers import WorkerProcess, faust_worker

pytestmark = pytest.mark.broker

PARTITIONS = 4
EARLY = 40
"""Records per partition before w1 starts: fetched with the record w1 holds."""
LATE = 5
"""Records per partition produced once both workers are ready."""
APP = "tests.integration.fix_probe_app"


@dataclass(frozen=True)
class Step:
    """How a race is stepped into the window a fix closes."""

    env: dict[str, str]
    shows: str
    """What w1's log says once the step has landed."""
    acted: str | None = None
    """What w1's log says once the fix has acted on it, for a fix that says so."""
    rebalance: bool = True
    """w1 holds its first record and w2 joins; else w1 reads alone."""


SEEK_WINDOW = Step(
    {"PROBE_STEP_FETCH": "1"}, "probe: a fetch in flight across the rebalance returned"
)
"""A fetch returns while the rebalance's recovery has resumed the partitions and not yet
sought them (the flow still stopped): Faust drops its records."""
KEEP_QUEUES = Step(
    {"PROBE_KEEP_QUEUES": "1", "NO_CYTHON": "1"}, "records queued", "records dropped unprocessed"
)
"""The records fetched with the held one stay queued through the revocation, so the stream
meets them while the flow is stopped: it skips them. Faust's pure-Python stream iterator
acknowledges what it skips; its Cython iterator, which this install uses, leaves it
unacknowledged, so the probe runs without it (``NO_CYTHON``), as Faust does wherever the
extension is not built."""
PAUSED_FETCH = Step(
    {"PROBE_PAUSE_FETCH": "1"}, "probe: paused", "fetched while not active", rebalance=False
)
"""A partition is paused between a fetch and its hand-over, with the flow running (as Faust's
table recovery pauses the stream partitions), and resumed a second later."""
HELD_WRITE_S = 10.0
"""How long the probe holds its first table write (Faust commits every 2.8 s)."""
HELD_WRITE = Step(
    {"PROBE_HOLD_WRITE_S": str(HELD_WRITE_S), "PROBE_TABLE": "1"},
    "probe: holding a table write",
    rebalance=False,
)
"""The first table write is held on its way to the broker (as by a full producer, or a
changelog partition without a leader) while the agent goes on and Faust commits."""

FIXES = {"seek": SEEK_WINDOW, "ack": KEEP_QUEUES, "paused-fetch": PAUSED_FETCH, "drain": HELD_WRITE}
"""Each fix (its name in :data:`tests.e2e.without_fix.UNDO`) and the step into its window."""


@pytest.mark.parametrize("fix", FIXES)
def test_with_every_fix_nothing_is_lost_in_the_window_of(
    fix: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    step = FIXES[fix]
    probe = probe_a_step(make_settings, tmp_path, step=step)
    assert probe.lost == set(), (
        f"{len(probe.lost)} lost, such as {min(probe.lost)!r}:\n{probe.logs}"
    )
    if step.acted is not None:  # the seek and the drain act without a line of their own
        assert step.acted in probe.logs


@pytest.mark.parametrize("fix", FIXES)
def test_without_the_fix_records_are_lost_in_its_window(
    fix: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    probe = probe_a_step(make_settings, tmp_path, step=FIXES[fix], without=fix)
    assert probe.lost, f"nothing was lost without the {fix} fix:\n{probe.logs}"


@dataclass(frozen=True)
class Probe:
    lost: set[bytes]
    """The keys of the first wave's records that no worker processed."""
    logs: str


def probe_a_step(
    make_settings: Callable[..., Settings], tmp_path: Path, *, step: Step, without: str = ""
) -> Probe:
    """Step w1 (and w2) into the window (module docstring), with every fix but ``without``."""
    settings = make_settings(topic_partitions=PARTITIONS)
    create_topics(
        settings, [Topic(name, "key", (), Direction.INTERNAL) for name in ("probe.in", "probe.out")]
    )
    early = produce_waves(settings, "early", EARLY)
    env = {
        "DOM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "DOM_TOPIC_PREFIX": settings.topic_prefix,
        "PROBE_APP_ID": f"{settings.topic_prefix}probe",
        "PROBE_WITHOUT": without,
        "PROBE_PARTITIONS": str(PARTITIONS),
        **step.env,
    }
    workers: list[WorkerProcess] = []
    try:
        w1 = start(workers, "w1", {**env, "PROBE_HOLD": "1" if step.rebalance else "0"}, tmp_path)
        if step.rebalance:
            w1.wait_for_log("probe: holding the first record", 60)
            start(workers, "w2", env, tmp_path)
            w1.wait_for_log("probe: the flow stopped", 60)
        w1.wait_for_log(step.shows, 60)
        if step is HELD_WRITE:
            committed = wait_for_a_commit(settings, f"{settings.topic_prefix}probe")
            w1.kill()
            return Probe(without_table_write(settings, committed), w1.log_tail(12_000))
        late = produce_waves(settings, "late", LATE)
        # a partition is read in order: once its late records are out, so is every early
        # record it will ever give
        outputs = consume(
            settings,
            settings.topic("probe.out"),
            expected=0,
            timeout=60,
            until=lambda got: late <= processed(got),
        )
        done = processed(outputs)
        assert late <= done, f"a partition was not read to its end: {sorted(late - done)}"
        return Probe(early - done, "\n".join(w.log_tail(12_000) for w in workers))
    finally:
        for worker in workers:
            worker.stop()


def processed(outputs: list[Record]) -> set[bytes]:
    """The keys of the input records the probe's outputs say were processed."""
    return {value.split(b"=")[0] for _key, value, _headers in outputs if value}


def without_table_write(settings: Settings, committed: dict[int, int]) -> set[bytes]:
    """The keys of the first wave's records the commit covers whose table write is not in the
    table's changelog: lost for good, as no worker reads them again."""
    covered = {f"early:{n}:{p}".encode() for p, offset in committed.items() for n in range(offset)}
    return covered - set(latest_by_key(read_to_end(settings, "probe-seen-changelog")))


def wait_for_a_commit(settings: Settings, group: str, timeout: float = 60.0) -> dict[int, int]:
    """The group's committed offsets of ``probe.in`` (partition -> offset) once one is."""
    deadline = time.monotonic() + timeout
    while True:
        committed = {
            tp.partition: tp.offset
            for tp in committed_offsets(settings, group)
            if tp.topic == settings.topic("probe.in") and tp.offset > 0
        }
        if committed:
            return committed
        assert time.monotonic() < deadline, "the group committed nothing"
        time.sleep(0.1)


def start(workers: list[WorkerProcess], name: str, env: dict[str, str], tmp: Path) -> WorkerProcess:
    worker = faust_worker(
        APP,
        {**env, "PROBE_WORKER": name, "PROBE_DATA_DIR": str(tmp / name)},
        tmp / f"{name}.log",
        free_port(),
    )
    workers.append(worker)
    return worker.start()


def produce_waves(settings: Settings, wave: str, per_partition: int) -> set[bytes]:
    """``per_partition`` records on each partition of ``probe.in``, keyed
    ``<wave>:<n>:<partition>``; return their keys."""
    keys: set[bytes] = set()
    for partition in range(PARTITIONS):
        wanted = [f"{wave}:{n}:{partition}".encode() for n in range(per_partition)]
        records = [(key, b"x") for key in wanted]
        assert produce(settings, settings.topic("probe.in"), records, partition) == per_partition
        keys.update(wanted)
    return keys
