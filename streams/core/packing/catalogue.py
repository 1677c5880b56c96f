"""The box catalogue cartonization chooses from: box types, their limits, and a YAML loader.

A catalogue is a fill factor and a non-empty list of box types. The YAML form (see
``deploy/cartons/boxes.yaml``, which mirrors :data:`DEFAULT_BOXES`)::

    fill_factor: 0.85          # optional, share of the inner volume that goods may fill
    boxes:
      - box_type: BOX-M        # unique; "OVERSIZE" is reserved
        length_mm: 400         # inner dimensions, any order
        width_mm: 300
        height_mm: 200
        max_weight_grams: 20000  # weight of the contents, box excluded
        protective: false      # optional: a padded box, for fragile goods
        tare_grams: 350        # optional: weight of the empty box
        cost: 0.90             # optional: breaks ties between boxes of equal volume

Every problem is reported as a :class:`CatalogueError` naming the entry (``boxes[2] (BOX-M)``)
and the field, so a bad deploy fails loudly at start-up rather than packing wrongly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import yaml

OVERSIZE = "OVERSIZE"
"""The box type of a carton holding a unit that no catalogue box can take (ships as-is)."""

DEFAULT_FILL_FACTOR = 0.85
"""Goods never fill a box completely: odd shapes and void fill take the rest."""

_BOX_KEYS = frozenset(
    {
        "box_type",
        "length_mm",
        "width_mm",
        "height_mm",
        "max_weight_grams",
        "protective",
        "tare_grams",
        "cost",
    }
)


class CatalogueError(ValueError):
    """A box catalogue that cannot be used, with the entry and field at fault."""


@dataclass(frozen=True)
class BoxType:
    """One kind of box: inner dimensions (mm), the weight it carries (g), padded or not."""

    box_type: str
    length_mm: int
    width_mm: int
    height_mm: int
    max_weight_grams: int
    protective: bool = False
    tare_grams: int = 0
    cost: float = 0.0

    # Figured once a box: packing asks every box of the catalogue for them, unit by unit.
    @cached_property
    def dims_mm(self) -> tuple[int, int, int]:
        """Inner dimensions, largest first (a box can be turned any way)."""
        a, b, c = sorted((self.length_mm, self.width_mm, self.height_mm), reverse=True)
        return (a, b, c)

    @cached_property
    def volume_mm3(self) -> int:
        return self.length_mm * self.width_mm * self.height_mm


@dataclass(frozen=True)
class BoxCatalogue:
    """Box types ordered smallest first (inner volume, then cost, then id)."""

    boxes: tuple[BoxType, ...]
    fill_factor: float = DEFAULT_FILL_FACTOR
    _by_id: Mapping[str, BoxType] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.boxes:
            raise CatalogueError("a box catalogue needs at least one box")
        if not 0 < self.fill_factor <= 1:
            raise CatalogueError(f"fill_factor must be in (0, 1], got {self.fill_factor!r}")
        ordered = tuple(sorted(self.boxes, key=lambda b: (b.volume_mm3, b.cost, b.box_type)))
        by_id: dict[str, BoxType] = {}
        for box in ordered:
            if box.box_type in by_id:
                raise CatalogueError(f"box_type {box.box_type!r} appears twice")
            if box.box_type == OVERSIZE:
                raise CatalogueError(f"box_type {OVERSIZE!r} is reserved")
            by_id[box.box_type] = box
        object.__setattr__(self, "boxes", ordered)
        object.__setattr__(self, "_by_id", by_id)

    @cached_property
    def protective_boxes(self) -> tuple[BoxType, ...]:
        return tuple(b for b in self.boxes if b.protective)

    @cached_property
    def standard_boxes(self) -> tuple[BoxType, ...]:
        return tuple(b for b in self.boxes if not b.protective)

    def box(self, box_type: str) -> BoxType:
        """The box of that id; KeyError if the catalogue has none."""
        return self._by_id[box_type]

    def capacity_mm3(self, box: BoxType) -> float:
        """The volume of goods the box takes, after the fill factor."""
        return box.volume_mm3 * self.fill_factor


DEFAULT_BOXES: tuple[BoxType, ...] = (
    BoxType("MAILER-S", 250, 180, 60, 2_000, tare_grams=60, cost=0.35),
    BoxType("BOX-S", 300, 200, 150, 10_000, tare_grams=180, cost=0.60),
    BoxType("BOX-M", 400, 300, 200, 20_000, tare_grams=350, cost=0.90),
    BoxType("BOX-L", 500, 400, 300, 25_000, tare_grams=600, cost=1.40),
    BoxType("BOX-XL", 600, 500, 400, 30_000, tare_grams=900, cost=2.10),
    BoxType("TUBE-L", 1000, 100, 100, 5_000, tare_grams=250, cost=1.20),
    BoxType("PADDED-S", 250, 200, 100, 3_000, protective=True, tare_grams=150, cost=0.90),
    BoxType("PADDED-M", 400, 300, 250, 15_000, protective=True, tare_grams=450, cost=1.80),
    BoxType("PADDED-L", 550, 450, 350, 20_000, protective=True, tare_grams=800, cost=2.60),
)
"""The built-in catalogue; ``deploy/cartons/boxes.yaml`` holds the same boxes."""


def default_catalogue() -> BoxCatalogue:
    """The built-in catalogue, for when no catalogue file is configured."""
    return BoxCatalogue(DEFAULT_BOXES, DEFAULT_FILL_FACTOR)


def load_catalogue(text: str) -> BoxCatalogue:
    """Parse a catalogue from YAML text; :class:`CatalogueError` says what is wrong and where."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogueError(f"box catalogue is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise CatalogueError("box catalogue must be a mapping with a 'boxes' list")
    unknown = sorted(set(doc) - {"boxes", "fill_factor"})
    if unknown:
        raise CatalogueError(f"box catalogue has unknown keys {unknown}")
    entries = doc.get("boxes")
    if not isinstance(entries, list) or not entries:
        raise CatalogueError("box catalogue needs a non-empty 'boxes' list")
    fill = doc.get("fill_factor", DEFAULT_FILL_FACTOR)
    if isinstance(fill, bool) or not isinstance(fill, int | float):
        raise CatalogueError(f"fill_factor must be a number, got {fill!r}")
    boxes = tuple(_box(entry, i) for i, entry in enumerate(entries))
    return BoxCatalogue(boxes, float(fill))


def _box(entry: Any, index: int) -> BoxType:
    where = f"boxes[{index}]"
    if not isinstance(entry, dict):
        raise CatalogueError(f"{where}: must be a mapping, got {entry!r}")
    box_type = entry.get("box_type")
    if not isinstance(box_type, str) or not box_type.strip():
        raise CatalogueError(f"{where}: box_type must be a non-blank string")
    where = f"{where} ({box_type})"
    unknown = sorted(set(entry) - _BOX_KEYS)
    if unknown:
        raise CatalogueError(f"{where}: unknown keys {unknown}")
    protective = entry.get("protective", False)
    if not isinstance(protective, bool):
        raise CatalogueError(f"{where}: protective must be true or false, got {protective!r}")
    cost = entry.get("cost", 0.0)
    if isinstance(cost, bool) or not isinstance(cost, int | float) or cost < 0:
        raise CatalogueError(f"{where}: cost must be a non-negative number, got {cost!r}")
    return BoxType(
        box_type=box_type.strip(),
        length_mm=_int(entry, "length_mm", where),
        width_mm=_int(entry, "width_mm", where),
        height_mm=_int(entry, "height_mm", where),
        max_weight_grams=_int(entry, "max_weight_grams", where),
        protective=protective,
        tare_grams=_int(entry, "tare_grams", where, default=0, minimum=0),
        cost=float(cost),
    )


def _int(
    entry: Mapping[str, Any], key: str, where: str, *, default: int | None = None, minimum: int = 1
) -> int:
    value = entry.get(key, default)
    if value is None:
        raise CatalogueError(f"{where}: {key} is required")
    # bool is an int in Python, but `true` for a dimension is surely a typo.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CatalogueError(f"{where}: {key} must be an integer >= {minimum}, got {value!r}")
    return value
