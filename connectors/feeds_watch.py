"""A file-drop folder for feeds: files dropped into ``<dir>/<kind>/`` are fed, then filed away.

Layout (made on start)::

    <dir>/wholesale/  marketplace/  pos-sales/  pickup/  stock/  locations/  products/
    <dir>/done/<kind>/     files that went through whole
    <dir>/failed/<kind>/   files with a bad row or a delivery failure, each with a
                           ``<name>.errors.txt`` beside it (the report)

A failed file's good rows were produced and its bad rows dead-lettered; fix the file and
drop it again: ids are deterministic, so what went through before is deduplicated.

Polling, not inotify: it works on every filesystem, network shares included. A file is
picked up once it has not changed for `settle_seconds` (so a half-copied file is left
alone); names starting with ``.`` or ``~`` and ending in ``.tmp``/``.part`` are ignored,
so a writer can also write under such a name and rename when done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from config.settings import Settings
from connectors.feeds import FeedKind, FeedReport, feed_file
from connectors.feeds_orders import MarketplaceParse
from connectors.feeds_parse import Problem
from connectors.producer import ContractProducer

__all__ = ["DONE", "FAILED", "pending_files", "watch"]

log = logging.getLogger(__name__)

DONE = "done"
FAILED = "failed"
_IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")


def _ignored(path: Path) -> bool:
    return path.name.startswith((".", "~")) or path.name.endswith(_IGNORED_SUFFIXES)


def pending_files(
    directory: Path, settle_seconds: float, now: float | None = None
) -> list[tuple[FeedKind, Path]]:
    """Files waiting in the kind subfolders, oldest first, that have settled."""
    now = time.time() if now is None else now
    found: list[tuple[float, str, FeedKind, Path]] = []
    for kind in FeedKind:
        folder = directory / kind.value
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if not path.is_file() or _ignored(path):
                continue
            modified = path.stat().st_mtime
            if now - modified >= settle_seconds:
                found.append((modified, path.name, kind, path))
    return [(kind, path) for _, _, kind, path in sorted(found)]


def _free_name(folder: Path, name: str) -> Path:
    """`folder/name`, or a timestamped variant when a file of that name was filed before."""
    target = folder / name
    if not target.exists():
        return target
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 0
    while target.exists():
        n += 1
        target = folder / f"{stem}.{stamp}{f'-{n}' if n > 1 else ''}{suffix}"
    return target


def file_away(directory: Path, kind: FeedKind, path: Path, report: FeedReport) -> Path:
    """Move a fed file to ``done/<kind>/`` or ``failed/<kind>/`` (with its errors beside)."""
    folder = directory / (DONE if report.ok else FAILED) / kind.value
    folder.mkdir(parents=True, exist_ok=True)
    target = _free_name(folder, path.name)
    path.replace(target)
    if not report.ok:
        errors = target.with_name(target.name + ".errors.txt")
        errors.write_text(report.summary().replace(str(path), str(target)) + "\n")
    return target


def _feed_one(
    settings: Settings,
    kind: FeedKind,
    path: Path,
    producer: ContractProducer,
    marketplace_parse: MarketplaceParse | None,
) -> FeedReport:
    try:
        return feed_file(settings, kind, path, producer, marketplace_parse=marketplace_parse)
    except Exception as exc:  # a watcher outlives any one file: report it and go on
        log.exception("feeding %s failed", path)
        report = FeedReport(kind, str(path))
        report.problems.append(Problem(str(path), 0, f"{type(exc).__name__}: {exc}", ""))
        return report


def _make_layout(directory: Path) -> None:
    for kind in FeedKind:
        (directory / kind.value).mkdir(parents=True, exist_ok=True)
    for outcome in (DONE, FAILED):
        (directory / outcome).mkdir(exist_ok=True)


def watch(
    settings: Settings,
    directory: Path | str,
    poll_seconds: float = 5.0,
    *,
    settle_seconds: float = 2.0,
    once: bool = False,
    on_report: Callable[[FeedReport, Path], None] | None = None,
    marketplace_parse: MarketplaceParse | None = None,
) -> list[FeedReport]:
    """Feed every file dropped into `directory`'s kind subfolders, polling until interrupted.

    With `once`, one pass over what is there now (settled or not, if `settle_seconds` is 0),
    and the reports are returned. `on_report` hears of each file fed, with where it went.
    """
    directory = Path(directory)
    _make_layout(directory)
    producer = ContractProducer(settings)
    reports: list[FeedReport] = []
    while True:
        for kind, path in pending_files(directory, settle_seconds):
            report = _feed_one(settings, kind, path, producer, marketplace_parse)
            target = file_away(directory, kind, path, report)
            log.info("%s -> %s", path, target)
            if on_report is not None:
                on_report(report, target)
            if once:
                reports.append(report)
        if once:
            return reports
        time.sleep(poll_seconds)
