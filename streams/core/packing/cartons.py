"""Cartonization: which boxes a shipment goes out in, and which units go in each.

The model is the usual warehouse approximation, not a 3D placement:

- a unit fits a box when its dimensions, largest first, are each within the box's inner
  dimensions, largest first (so any of its six orientations is allowed);
- a carton of several units holds at most ``fill_factor`` of the box's inner volume and at
  most ``max_weight_grams``; a carton of one unit only needs the unit to fit (a product's own
  packaging is often made to a box size, so a snug single item is fine);
- fragile units never share a carton with non-fragile ones, and go into protective (padded)
  boxes when one fits; ``protective=True`` (a rule asked for it) puts every unit in a
  protective box where one fits; otherwise standard boxes are used, and any box at all when
  no box of the preferred kind fits the unit;
- a unit that no box takes (too big or too heavy) ships alone as box type ``OVERSIZE``;
- a product without dimensions or weight is taken as :data:`DEFAULT_DIMS_MM` and
  :data:`DEFAULT_WEIGHT_GRAMS` (a small parcel), per missing field, and the plan says so.

Packing is first-fit decreasing, where a carton accepts a unit as long as some box of its
kind can still hold everything in it; each carton then gets the smallest such box. That
gives few cartons first and small boxes second; it is a heuristic, not a proven optimum.
Output is deterministic: units are sorted before packing, so the order of lines and units
does not matter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from schemas.models import Carton, Product
from streams.core.packing.catalogue import (
    DEFAULT_BOXES,
    DEFAULT_FILL_FACTOR,
    OVERSIZE,
    BoxCatalogue,
    BoxType,
    CatalogueError,
    default_catalogue,
    load_catalogue,
)

__all__ = [
    "DEFAULT_BOXES",
    "DEFAULT_DIMS_MM",
    "DEFAULT_FILL_FACTOR",
    "DEFAULT_WEIGHT_GRAMS",
    "MAX_PACKING_LIST_BYTES",
    "OVERSIZE",
    "BoxCatalogue",
    "BoxType",
    "CartonPlan",
    "CatalogueError",
    "LineLike",
    "PackedCarton",
    "Unit",
    "cartonize",
    "cartonize_shipment",
    "default_catalogue",
    "load_catalogue",
    "packing_list_bytes",
    "packing_problem",
    "unit_of",
    "units_for",
]

DEFAULT_DIMS_MM = (200, 150, 100)
"""Length, width, height assumed for a product whose dimensions are unknown (or 0)."""

DEFAULT_WEIGHT_GRAMS = 1000
"""Weight assumed for a product whose weight is unknown (or 0)."""

# Order of the kinds of box a group of units is packed in; it orders the cartons too.
_KINDS = ("standard", "protective", "any")


class LineLike(Protocol):
    """What cartonization needs of a shipment line (ShipmentLine, the saga's Line, ...)."""

    @property
    def sku(self) -> str: ...

    @property
    def quantity(self) -> int: ...


@dataclass(frozen=True)
class Unit:
    """One physical item to pack; ``dims_mm`` is largest first."""

    sku: str
    dims_mm: tuple[int, int, int]
    weight_grams: int
    fragile: bool = False
    assumed: bool = False
    """True when some dimension or the weight was unknown and defaulted."""

    @cached_property
    def volume_mm3(self) -> int:
        return self.dims_mm[0] * self.dims_mm[1] * self.dims_mm[2]


@dataclass(frozen=True)
class PackedCarton:
    """A carton of the plan: its box (None for ``OVERSIZE``) and the units in it."""

    box_type: str
    units: tuple[Unit, ...]
    box: BoxType | None = None

    @property
    def weight_grams(self) -> int:
        """Weight of the contents, box excluded."""
        return sum(u.weight_grams for u in self.units)

    @property
    def skus(self) -> tuple[str, ...]:
        """One entry per unit, sorted."""
        return tuple(sorted(u.sku for u in self.units))

    def carton(self) -> Carton:
        return Carton(box_type=self.box_type, skus=self.skus)


@dataclass(frozen=True)
class CartonPlan:
    """The cartons of a shipment, and a human-readable account of why."""

    packed: tuple[PackedCarton, ...]
    explanation: str

    @property
    def cartons(self) -> tuple[Carton, ...]:
        """The contract's cartons, ready for a PackagingCommand."""
        return tuple(p.carton() for p in self.packed)


MAX_PACKING_LIST_BYTES = 256 * 1024
"""The most a shipment's packaging command may spend listing its units (one sku a unit).

A command is one Kafka record, at most 1 MiB, and the order's state keeps the commands it sent
(to send them again after a crash); a line of 100,000 units made both larger than that. An
order whose units would take more is refused before anything is reserved: about 30,000 units
of a 6-character sku, 10,000 of a 24-character one."""


def packing_list_bytes(lines: Iterable[LineLike]) -> int:
    """The bytes the units of ``lines`` take in packaging commands: each unit its sku and the
    Avro string's length, one or two bytes."""
    return sum(line.quantity * (len(line.sku.encode()) + 2) for line in lines)


def packing_problem(lines: Iterable[LineLike]) -> str | None:
    """Why the units of ``lines`` cannot be listed in packaging commands, or None."""
    lines = list(lines)
    size = packing_list_bytes(lines)
    if size <= MAX_PACKING_LIST_BYTES:
        return None
    units = sum(line.quantity for line in lines)
    return (
        f"its {units} units are more than packaging commands can list, one entry a unit "
        f"({size} bytes of skus, at most {MAX_PACKING_LIST_BYTES})"
    )


def unit_of(sku: str, product: Product | None) -> Unit:
    """One unit of ``sku``, sized from its product; defaults fill in what is unknown."""
    known = (
        (product.length_mm, product.width_mm, product.height_mm, product.weight_grams)
        if product is not None
        else (None, None, None, None)
    )
    defaults = (*DEFAULT_DIMS_MM, DEFAULT_WEIGHT_GRAMS)
    # 0 mm or 0 g is what upstream systems send for "not filled in", never a real size.
    length, width, height, weight = (v if v else d for v, d in zip(known, defaults, strict=True))
    a, b, c = sorted((length, width, height), reverse=True)
    return Unit(
        sku=sku,
        dims_mm=(a, b, c),
        weight_grams=weight,
        fragile=product.fragile if product is not None else False,
        assumed=not all(known),
    )


def units_for(lines: Iterable[LineLike], products: Mapping[str, Product]) -> tuple[Unit, ...]:
    """One :class:`Unit` per unit of every line (an unknown sku gets default size and weight)."""
    units: list[Unit] = []
    for line in lines:
        unit = unit_of(line.sku, products.get(line.sku))
        units.extend([unit] * line.quantity)
    return tuple(units)


def cartonize_shipment(
    lines: Iterable[LineLike],
    products: Mapping[str, Product],
    catalogue: BoxCatalogue,
    *,
    protective: bool = False,
) -> CartonPlan:
    """Cartons for the lines of one shipment, with products from master data."""
    return cartonize(units_for(lines, products), catalogue, protective=protective)


def cartonize(
    units: Iterable[Unit], catalogue: BoxCatalogue, *, protective: bool = False
) -> CartonPlan:
    """Pack ``units`` into as few cartons as possible, each in the smallest box that holds it."""
    ordered = sorted(units, key=_packing_order)
    groups: dict[tuple[bool, str], list[Unit]] = {}
    oversize: list[Unit] = []
    for unit in ordered:
        kind = _kind_of(unit, catalogue, protective=protective)
        if kind is None:
            oversize.append(unit)
        else:
            groups.setdefault((unit.fragile, kind), []).append(unit)
    packed: list[PackedCarton] = []
    for fragile, kind in sorted(groups, key=lambda g: (g[0], _KINDS.index(g[1]))):
        boxes = _boxes_of_kind(catalogue, kind)
        packed.extend(_first_fit_decreasing(groups[(fragile, kind)], boxes, catalogue))
    packed.extend(PackedCarton(OVERSIZE, (u,)) for u in oversize)
    plan = tuple(packed)
    return CartonPlan(plan, _explain(plan, ordered))


def _packing_order(unit: Unit) -> tuple[int, int, tuple[int, ...], str, bool]:
    # Biggest first is what makes first-fit good; the rest only makes the order total.
    return (
        -unit.volume_mm3,
        -unit.weight_grams,
        tuple(-d for d in unit.dims_mm),
        unit.sku,
        unit.fragile,
    )


def _kind_of(unit: Unit, catalogue: BoxCatalogue, *, protective: bool) -> str | None:
    """The kind of box the unit goes in, or None when no box takes it."""
    wants_padding = protective or unit.fragile
    if wants_padding and any(_takes_alone(b, unit) for b in catalogue.protective_boxes):
        return "protective"
    if any(_takes_alone(b, unit) for b in catalogue.standard_boxes):
        return "standard"
    if any(_takes_alone(b, unit) for b in catalogue.boxes):
        return "any"
    return None


def _boxes_of_kind(catalogue: BoxCatalogue, kind: str) -> tuple[BoxType, ...]:
    if kind == "protective":
        return catalogue.protective_boxes
    if kind == "standard":
        return catalogue.standard_boxes
    return catalogue.boxes


def _takes_alone(box: BoxType, unit: Unit) -> bool:
    # Asked some 20 times a shipment: compared in place, without a generator.
    u, b = unit.dims_mm, box.dims_mm
    return (
        u[0] <= b[0] and u[1] <= b[1] and u[2] <= b[2] and unit.weight_grams <= box.max_weight_grams
    )


@dataclass
class _OpenCarton:
    """A carton being filled: its units, their totals, and the boxes that still hold them."""

    units: list[Unit]
    volume_mm3: int
    weight_grams: int
    boxes: tuple[BoxType, ...]

    def try_add(self, unit: Unit, catalogue: BoxCatalogue) -> bool:
        volume = self.volume_mm3 + unit.volume_mm3
        weight = self.weight_grams + unit.weight_grams
        boxes = tuple(
            b
            for b in self.boxes
            if _takes_alone(b, unit)
            and weight <= b.max_weight_grams
            and volume <= catalogue.capacity_mm3(b)
        )
        if not boxes:
            return False
        self.units.append(unit)
        self.volume_mm3, self.weight_grams, self.boxes = volume, weight, boxes
        return True


def _first_fit_decreasing(
    units: list[Unit], boxes: tuple[BoxType, ...], catalogue: BoxCatalogue
) -> list[PackedCarton]:
    """Pack units (biggest first) into cartons of ``boxes``; every unit fits one alone.

    A carton that refused a unit refuses every later unit of the same size and weight (it only
    gets fuller), and sorting puts those units next to each other: each is tried from the
    carton that took the one before. Without that, a line of 10,000 units tried every open
    carton for every unit, and packing took minutes while the worker stood still.
    """
    cartons: list[_OpenCarton] = []
    start, shape = 0, None
    for unit in units:
        if (unit.dims_mm, unit.weight_grams) != shape:
            start, shape = 0, (unit.dims_mm, unit.weight_grams)
        taken = next(
            (i for i in range(start, len(cartons)) if cartons[i].try_add(unit, catalogue)), None
        )
        if taken is None:
            alone = tuple(b for b in boxes if _takes_alone(b, unit))
            cartons.append(_OpenCarton([unit], unit.volume_mm3, unit.weight_grams, alone))
            taken = len(cartons) - 1
        start = taken
    # Boxes are kept smallest first, so the first one left is the smallest that holds it all.
    return [PackedCarton(c.boxes[0].box_type, tuple(c.units), c.boxes[0]) for c in cartons]


def _explain(plan: tuple[PackedCarton, ...], units: list[Unit]) -> str:
    if not plan:
        return "nothing to pack"
    parts = [f"{len(units)} unit(s) in {len(plan)} carton(s)"]
    parts.extend(_describe(p) for p in plan)
    assumed = sorted({u.sku for u in units if u.assumed})
    if assumed:
        dims = "x".join(str(d) for d in DEFAULT_DIMS_MM)
        parts.append(
            f"size or weight unknown for {', '.join(assumed)}: "
            f"assumed {dims} mm, {DEFAULT_WEIGHT_GRAMS} g where missing"
        )
    return "; ".join(parts)


def _describe(packed: PackedCarton) -> str:
    counts: dict[str, int] = {}
    for sku in packed.skus:
        counts[sku] = counts.get(sku, 0) + 1
    content = ", ".join(f"{sku} x{n}" if n > 1 else sku for sku, n in counts.items())
    weight = f"{packed.weight_grams / 1000:.2f} kg"
    if packed.box is None:
        unit = packed.units[0]
        dims = "x".join(str(d) for d in unit.dims_mm)
        return f"{OVERSIZE} [{content}] {dims} mm, {weight}: fits no box"
    volume = sum(u.volume_mm3 for u in packed.units)
    full = 100 * volume / packed.box.volume_mm3
    fragile = " fragile" if any(u.fragile for u in packed.units) else ""
    return f"{packed.box_type} [{content}]{fragile} {weight}, {full:.0f}% full"
