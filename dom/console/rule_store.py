"""What the console keeps rules in: the :class:`RuleStore` interface and the versions it lists.

Its own module: the console's shared state holds a store and the rules handlers use that state,
so neither of them imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from schemas.models import Rule


@dataclass(frozen=True, slots=True)
class RuleVersion:
    """One record of a rule id on the topic: a version, or a deletion (``rule`` None)."""

    rule_id: str
    rule: Rule | None
    error: str | None = None
    """Why workers refuse this version, if they do."""


class RuleStore(Protocol):
    """Where rules live; blocking calls, run off the event loop."""

    def versions(self) -> list[RuleVersion]: ...

    def publish(self, rule: Rule) -> None: ...

    def dry_run(self, rule: Rule, last: int) -> dict[str, Any]: ...
