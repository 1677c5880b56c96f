"""What the rules of one stage decided for one order, as plain frozen values.

Each stage has its own result: ``RoutingDirectives`` steer routing (and may hold the
order), ``PackagingDirectives`` and ``MarketingDirectives`` fill a packaging command.
All three carry ``fired`` (rule ids in evaluation order, for ``rules_fired``),
``explanation`` (how conflicts were settled, for the status reason or a log) and
``failures`` (conditions that failed on this order: those rules did not fire).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import cast

from schemas.commands import Insert
from schemas.enums import InsertKind, LocationKind, RuleStage, ServiceLevel
from streams.core.routing.model import RoutingRequest
from streams.core.rules.actions import Accumulator

ERROR, SLOW = "error", "slow"


@dataclass(frozen=True, slots=True)
class RuleFailure:
    """A condition that failed on one order (``kind`` ERROR: the rule is treated as not
    fired), or that ran over the evaluation budget (SLOW: reported only)."""

    rule_id: str
    message: str
    kind: str = ERROR

    def __str__(self) -> str:
        return f"rule {self.rule_id!r}: {self.message}"


@dataclass(frozen=True, slots=True)
class RoutingDirectives:
    """How the routing rules steer one order; ``hold_reason`` set means ON_HOLD."""

    hold_reason: str | None = None
    excluded_locations: tuple[str, ...] = ()
    excluded_kinds: tuple[LocationKind, ...] = ()
    preferred_locations: tuple[str, ...] = ()
    forced_location: str | None = None
    service_level: ServiceLevel | None = None
    max_shipments: int | None = None
    fired: tuple[str, ...] = ()
    explanation: tuple[str, ...] = ()
    failures: tuple[RuleFailure, ...] = ()


@dataclass(frozen=True, slots=True)
class PackagingDirectives:
    """Packaging type (None: the default) and printed notes and gift messages."""

    packaging: str | None = None
    notes: tuple[str, ...] = ()
    gift_inserts: tuple[str, ...] = ()
    fired: tuple[str, ...] = ()
    explanation: tuple[str, ...] = ()
    failures: tuple[RuleFailure, ...] = ()

    def inserts(self) -> tuple[Insert, ...]:
        """The notes and gift messages as packaging-command inserts."""
        return tuple(Insert(kind=InsertKind.NOTE, value=note) for note in self.notes) + tuple(
            Insert(kind=InsertKind.GIFT, value=text) for text in self.gift_inserts
        )


@dataclass(frozen=True, slots=True)
class MarketingDirectives:
    """Samples (skus) and discount codes to put in the parcel."""

    samples: tuple[str, ...] = ()
    discount_codes: tuple[str, ...] = ()
    fired: tuple[str, ...] = ()
    explanation: tuple[str, ...] = ()
    failures: tuple[RuleFailure, ...] = ()

    def inserts(self) -> tuple[Insert, ...]:
        """The samples and discount codes as packaging-command inserts."""
        return tuple(Insert(kind=InsertKind.SAMPLE, value=sku) for sku in self.samples) + tuple(
            Insert(kind=InsertKind.DISCOUNT_CODE, value=code) for code in self.discount_codes
        )


StageDirectives = RoutingDirectives | PackagingDirectives | MarketingDirectives


def build_directives(
    stage: RuleStage,
    settings: Accumulator,
    fired: tuple[str, ...],
    failures: tuple[RuleFailure, ...],
) -> StageDirectives:
    """The result of a stage from what its fired rules set."""
    explanation = tuple(settings.explanation)
    if stage is RuleStage.ROUTING:
        level = settings.single("service_level")
        return RoutingDirectives(
            hold_reason=cast("str | None", settings.single("hold_reason")),
            excluded_locations=settings.many("excluded_locations"),
            excluded_kinds=tuple(LocationKind(kind) for kind in settings.many("excluded_kinds")),
            preferred_locations=settings.many("preferred_locations"),
            forced_location=cast("str | None", settings.single("forced_location")),
            service_level=None if level is None else ServiceLevel(str(level)),
            max_shipments=settings.minimum("max_shipments"),
            fired=fired,
            explanation=explanation,
            failures=failures,
        )
    if stage is RuleStage.PACKAGING:
        return PackagingDirectives(
            packaging=cast("str | None", settings.single("packaging")),
            notes=settings.many("notes"),
            gift_inserts=settings.many("gift_inserts"),
            fired=fired,
            explanation=explanation,
            failures=failures,
        )
    return MarketingDirectives(
        samples=settings.many("samples"),
        discount_codes=settings.many("discount_codes"),
        fired=fired,
        explanation=explanation,
        failures=failures,
    )


def apply_routing(request: RoutingRequest, directives: RoutingDirectives) -> RoutingRequest:
    """``request`` with the rules' steering added; what it already had is kept.

    Exclusions add up, the rules' preferred locations come after any the request
    already has, a forced location from a rule replaces one in the request, and the
    tighter of the two shipment caps applies. Holding and the service level are for
    the caller: routing does not see them.
    """
    preferred = tuple(dict.fromkeys(request.preferred_locations + directives.preferred_locations))
    caps = [cap for cap in (request.max_shipments, directives.max_shipments) if cap is not None]
    return dataclasses.replace(
        request,
        excluded_locations=request.excluded_locations | frozenset(directives.excluded_locations),
        excluded_kinds=request.excluded_kinds | frozenset(directives.excluded_kinds),
        preferred_locations=preferred,
        forced_location=directives.forced_location or request.forced_location,
        max_shipments=min(caps) if caps else None,
    )
