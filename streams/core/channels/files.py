"""Channel policy files: the YAML that holds the default policies (``deploy/channels/``),
read into contract ``ChannelPolicy`` records.

A file holds a list under ``channels``::

    channels:
      - channel: MARKETPLACE        # required: WEB, MARKETPLACE, POS, WHOLESALE, CALL_CENTER
        location_kinds: [DC]        # DC and/or STORE
        location_ids: []            # locations by id (a location serves when named or its
                                    # kind is listed; both empty: every location)
        buffer_units: 2             # units held back from the channel
        buffer_pct: 0               # whole percent held back too, rounded up
        low_stock_threshold: 0      # below this the channel sees 0
        description: Marketplace orders ship from the DCs only

Every problem of a file is reported at once, each with the file, the entry and what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import yaml
from pydantic import ValidationError

from schemas.sellable import ChannelPolicy

FIELDS = (
    "channel",
    "location_ids",
    "location_kinds",
    "buffer_units",
    "buffer_pct",
    "low_stock_threshold",
)


class ChannelFileError(ValueError):
    """A channel policy file with problems; ``problems`` has one line per problem."""

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n" + "\n".join(self.problems))


def load_channel_file(
    text: str, source: str, *, updated_by: str, now: datetime
) -> list[ChannelPolicy]:
    """The policies of a YAML channel file; raise ChannelFileError naming every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ChannelFileError(source, [f"{source}: not valid YAML: {error}"]) from None
    except RecursionError:
        raise ChannelFileError(source, [f"{source}: YAML nested too deeply to read"]) from None
    entries = data.get("channels") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ChannelFileError(source, [f"{source}: expected a list of policies under 'channels:'"])
    policies: list[ChannelPolicy] = []
    problems: list[str] = []
    for index, entry in enumerate(entries, start=1):
        label = f"{source}: entry {index}"
        try:
            policy = _policy(entry, updated_by, now)
        except ValueError as error:
            problems.append(f"{label}: {error}")
            continue
        if any(p.channel == policy.channel for p in policies):
            problems.append(f"{label}: {policy.channel.value} is given by an earlier entry")
            continue
        policies.append(policy)
    if problems:
        raise ChannelFileError(source, problems)
    return policies


def _policy(entry: Any, updated_by: str, now: datetime) -> ChannelPolicy:
    if not isinstance(entry, dict):
        raise ValueError("expected a mapping with a channel and its policy")
    unknown = sorted(str(k) for k in entry if k not in (*FIELDS, "description"))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")
    fields = {k: entry[k] for k in FIELDS if entry.get(k) is not None}
    try:
        return ChannelPolicy(**fields, updated_by=updated_by, updated_at=now)
    except ValidationError as error:
        raise ValueError(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}"
        for problem in error.errors(include_url=False)
    )
