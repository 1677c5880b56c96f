"""File feeds: read a channel's file, produce its contract events, dead-letter its bad rows.

`feed_file` turns one file (or a directory of marketplace documents) into records with the
pure parsers of ``connectors.feeds_*``, produces them with `ContractProducer`, and sends every
bad row to ``dom.dlq.v1`` as the contract's dead-letter rule says, adapted to files:

- key: the file name (UTF-8), value: the raw row as it stood in the file (UTF-8);
- ``dom.error``: ``line N: reason``; ``dom.stage``: ``feed:<kind>``;
  ``dom.source.topic``: ``file:<absolute path>``; ``dom.source.partition``: ``-1`` (a file
  has none); ``dom.source.offset``: the line number the row starts on.

A bad row never stops the file: the rest always goes through. Problems about a whole file
(unreadable, empty, not UTF-8) are reported at line 0 and not dead-lettered; the file itself
is what to fix and send again. `watch` polls a drop directory and does the same per file.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from config.settings import Settings
from connectors.feeds_masters import parse_locations, parse_products
from connectors.feeds_orders import (
    MarketplaceParse,
    parse_marketplace,
    parse_pickup,
    parse_wholesale,
)
from connectors.feeds_parse import Parsed, Problem
from connectors.feeds_stock import parse_pos_sales, parse_stock
from connectors.producer import ContractProducer
from schemas import topics as registry
from schemas.dlq import dead_letter

__all__ = [
    "MARKETPLACE_SUFFIXES",
    "FeedKind",
    "FeedReport",
    "feed_file",
    "feed_files",
    "read_feed",
    "send_dead_letter",
]

log = logging.getLogger(__name__)

MARKETPLACE_SUFFIXES = (".json", ".jsonl", ".ndjson")
_JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


class FeedKind(StrEnum):
    """What a file holds; the value is the command-line name and the drop subfolder."""

    WHOLESALE = "wholesale"
    MARKETPLACE = "marketplace"
    POS_SALES = "pos-sales"
    PICKUP = "pickup"
    STOCK = "stock"
    LOCATIONS = "locations"
    PRODUCTS = "products"


@dataclass
class FeedReport:
    """What became of one feed file: records produced per topic, problems, deliveries."""

    kind: FeedKind
    path: str
    produced: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    dead_lettered: int = 0
    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every row became a record and the broker took every message."""
        return not self.problems and not self.failed

    def summary(self) -> str:
        """One line of counts, then every problem as ``path:line: reason``."""
        produced = ", ".join(f"{n} to {t}" for t, n in sorted(self.produced.items())) or "nothing"
        lines = [
            f"{self.path} ({self.kind}): produced {produced}; "
            f"{len(self.problems)} problem(s), {self.dead_lettered} dead-lettered; "
            f"broker confirmed {self.delivered}, failed {self.failed}"
        ]
        lines += [str(p) for p in self.problems]
        lines += [f"{self.path}: delivery: {e}" for e in self.errors]
        return "\n".join(lines)


def _marketplace_order() -> MarketplaceParse:
    # Imported when a marketplace file is read: the mapping lives in its own module.
    from connectors.marketplace import marketplace_order

    parse: MarketplaceParse = marketplace_order
    return parse


def _read_text(path: Path) -> str | Problem:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        return Problem(str(path), 0, f"cannot read the file: {exc.strerror or exc}", "")
    except UnicodeDecodeError as exc:
        return Problem(str(path), 0, f"not UTF-8 text (byte {exc.start}): save it as UTF-8", "")


def _parse_text(
    kind: FeedKind, path: Path, text: str, marketplace_parse: MarketplaceParse | None
) -> Parsed:
    name = str(path)
    if kind is FeedKind.MARKETPLACE:
        json_lines = path.suffix.lower() in _JSON_LINES_SUFFIXES
        try:
            parse = marketplace_parse or _marketplace_order()
        except ImportError as exc:
            return Parsed([], [Problem(name, 0, f"no marketplace mapping here: {exc}", "")])
        return parse_marketplace(text, name, parse, json_lines=json_lines)
    if kind in (FeedKind.LOCATIONS, FeedKind.PRODUCTS):
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        masters = parse_locations if kind is FeedKind.LOCATIONS else parse_products
        return masters(text, name, modified)
    parsers: dict[FeedKind, Callable[[str, str], Parsed]] = {
        FeedKind.WHOLESALE: parse_wholesale,
        FeedKind.POS_SALES: parse_pos_sales,
        FeedKind.PICKUP: parse_pickup,
        FeedKind.STOCK: parse_stock,
    }
    return parsers[kind](text, name)


def _files_of(kind: FeedKind, path: Path) -> list[Path]:
    """A file is itself; a directory (of marketplace documents) is its JSON files, by name."""
    if not path.is_dir():
        return [path]
    suffixes = MARKETPLACE_SUFFIXES if kind is FeedKind.MARKETPLACE else None
    return sorted(
        p
        for p in path.iterdir()
        if p.is_file() and not p.name.startswith(".") and (not suffixes or p.suffix in suffixes)
    )


def read_feed(
    kind: FeedKind, path: Path, *, marketplace_parse: MarketplaceParse | None = None
) -> list[tuple[Path, Parsed]]:
    """Parse `path` as a `kind` feed, file by file; no Kafka."""
    results: list[tuple[Path, Parsed]] = []
    for file in _files_of(kind, path):
        text = _read_text(file)
        if isinstance(text, Problem):
            results.append((file, Parsed([], [text])))
        else:
            results.append((file, _parse_text(kind, file, text, marketplace_parse)))
    return results


def send_dead_letter(
    producer: ContractProducer, kind: FeedKind, file: Path, problem: Problem
) -> None:
    """The bad row to ``dom.dlq.v1``: file name as key, raw row as value, reasons in headers."""
    letter = dead_letter(
        file.name.encode(),
        problem.raw.encode(),
        error=problem.message,
        stage=f"feed:{kind}",
        source_topic=f"file:{os.path.abspath(file)}",
        partition=-1,
        offset=problem.line,
    )
    producer.send_raw(registry.DLQ.name, letter.key, letter.value, headers=letter.headers)


def _produce(
    producer: ContractProducer, kind: FeedKind, file: Path, parsed: Parsed, report: FeedReport
) -> None:
    producer.send_bulk(parsed.records)  # a count's stock packed (settings.pack_stock)
    for record in parsed.records:
        report.produced[registry.topic_for(record.avro_name).name] += 1
    for problem in parsed.problems:
        report.problems.append(problem)
        if problem.line > 0:
            send_dead_letter(producer, kind, file, problem)
            report.dead_lettered += 1


def feed_file(
    settings: Settings,
    kind: FeedKind | str,
    path: Path | str,
    producer: ContractProducer | None = None,
    *,
    marketplace_parse: MarketplaceParse | None = None,
) -> FeedReport:
    """Produce the good records of a feed file, dead-letter its bad rows, flush, report.

    `producer` may be shared between calls (it is flushed, not closed); without one, a
    producer is made for this file. Delivery failures are counted in the report.
    """
    kind, path = FeedKind(kind), Path(path)
    report = FeedReport(kind, str(path))
    producer = producer or ContractProducer(settings)
    delivered, failed = producer.report.delivered, producer.report.failed
    try:
        for file, parsed in read_feed(kind, path, marketplace_parse=marketplace_parse):
            _produce(producer, kind, file, parsed, report)
    finally:
        delivery = producer.flush()
        report.delivered = delivery.delivered - delivered
        report.failed = delivery.failed - failed
        # The producer keeps its last ten errors; those of this file are among the newest.
        report.errors = delivery.errors[-min(report.failed, 10) :] if report.failed else []
    log.info("fed %s: %d problem(s), %d delivered", path, len(report.problems), report.delivered)
    return report


def feed_files(
    settings: Settings,
    kind: FeedKind | str,
    paths: Iterable[Path | str],
    *,
    marketplace_parse: MarketplaceParse | None = None,
) -> list[FeedReport]:
    """`feed_file` for each path, through one producer."""
    producer = ContractProducer(settings)
    try:
        return [
            feed_file(settings, kind, p, producer, marketplace_parse=marketplace_parse)
            for p in paths
        ]
    finally:
        producer.close()
