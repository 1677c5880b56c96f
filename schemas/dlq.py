"""What goes to the dead-letter topic when a value cannot be decoded or validated.

The original key and bytes stay as they were, so the message can be replayed once
fixed; why and where it failed travels in headers (UTF-8 text). No Kafka client
here: the stage that produces the record owns the producer.
"""

from dataclasses import dataclass

__all__ = [
    "HEADER_ERROR",
    "HEADER_SOURCE_OFFSET",
    "HEADER_SOURCE_PARTITION",
    "HEADER_SOURCE_TOPIC",
    "HEADER_STAGE",
    "MAX_ERROR_CHARS",
    "DeadLetter",
    "dead_letter",
]

HEADER_ERROR = "dom.error"
HEADER_STAGE = "dom.stage"
HEADER_SOURCE_TOPIC = "dom.source.topic"
HEADER_SOURCE_PARTITION = "dom.source.partition"
HEADER_SOURCE_OFFSET = "dom.source.offset"
# A validation report of a huge record can be long; headers should stay small.
MAX_ERROR_CHARS = 4000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record for the dead-letter topic: original key and value, reasons in headers."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def dead_letter(
    key: bytes | None,
    value: bytes | None,
    *,
    error: str,
    stage: str,
    source_topic: str,
    partition: int,
    offset: int,
) -> DeadLetter:
    """The dead letter of the message at `source_topic`/`partition`/`offset`.

    A message with neither key nor value (a tombstone without a key) gets an empty value:
    Kafka's clients refuse to send a record that has neither, and the stage sending it stopped.
    """
    if key is None and value is None:
        value = b""
    if len(error) > MAX_ERROR_CHARS:
        error = error[: MAX_ERROR_CHARS - 1] + "…"
    headers = [
        (HEADER_ERROR, error),
        (HEADER_STAGE, stage),
        (HEADER_SOURCE_TOPIC, source_topic),
        (HEADER_SOURCE_PARTITION, str(partition)),
        (HEADER_SOURCE_OFFSET, str(offset)),
    ]
    return DeadLetter(key, value, [(name, text.encode()) for name, text in headers])
