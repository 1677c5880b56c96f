"""Master data feeds: locations and products, from CSV or YAML.

Pure parsers, text in and `Parsed` out, one record per row (CSV) or list item (YAML); a
bad one is a problem, the others go through. Both land on compacted topics keyed by
location_id and sku, so a re-sent file simply restates the same values.

A location's ``updated_at`` comes from its ``updated_at`` column when given; otherwise
from `default_time`, which the producing side sets to the file's modification time so
that sending the same file twice yields identical records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import PurePath
from typing import Any

from pydantic import ValidationError

from connectors.feeds_parse import (
    Fields,
    Parsed,
    Problem,
    Row,
    RowError,
    describe_validation,
    read_csv,
    yaml_items,
)
from schemas.models import Address, Capability, Location, LocationKind, Message, Product

LOCATION_COLUMNS = (
    "location_id",
    "name",
    "kind",
    "line1",
    "city",
    "region",
    "postal_code",
    "country",
)
LOCATION_OPTIONAL = (
    "address_name",
    "line2",
    "lat",
    "lon",
    "capabilities",
    "priority",
    "daily_order_capacity",
    "active",
    "updated_at",
)
PRODUCT_COLUMNS = ("sku", "name", "category", "unit_price")
PRODUCT_OPTIONAL = (
    "weight_grams",
    "length_mm",
    "width_mm",
    "height_mm",
    "fragile",
    "hazmat",
    "tags",
)
YAML_SUFFIXES = (".yaml", ".yml")


def _capabilities(f: Fields) -> tuple[Capability, ...]:
    found: list[Capability] = []
    for name in f.strings("capabilities"):
        try:
            found.append(Capability(name.upper()))
        except ValueError:
            f.fail(f"capability {name!r} is not one of {', '.join(Capability)}")
    return tuple(found)


def _location(cells: Mapping[str, Any], default_time: datetime) -> Location:
    f = Fields(cells)
    name = f.text("name")
    address: dict[str, Any] = {
        "name": f.optional_text("address_name") or name,
        "line1": f.text("line1"),
        "line2": f.optional_text("line2"),
        "city": f.text("city"),
        "region": f.text("region"),
        "postal_code": f.text("postal_code"),
        "country": f.country("country"),
        "lat": f.optional_float("lat", -90, 90),
        "lon": f.optional_float("lon", -180, 180),
    }
    fields: dict[str, Any] = {
        "location_id": f.text("location_id"),
        "name": name,
        "kind": f.choice("kind", LocationKind),
        "capabilities": _capabilities(f),
        "priority": f.whole("priority", default=100),
        "daily_order_capacity": f.optional_whole("daily_order_capacity", minimum=0),
        "active": f.boolean("active", True),
        "updated_at": f.timestamp("updated_at", default=default_time),
    }
    f.check()
    return Location(address=Address(**address), **fields)


def _product(cells: Mapping[str, Any], _default_time: datetime) -> Product:
    f = Fields(cells)
    sizes = ("weight_grams", "length_mm", "width_mm", "height_mm")
    fields: dict[str, Any] = {
        "sku": f.text("sku"),
        "name": f.text("name"),
        "category": f.text("category"),
        "unit_price": f.money("unit_price"),
        **{size: f.optional_whole(size, minimum=0) for size in sizes},
        "fragile": f.boolean("fragile", False),
        "hazmat": f.boolean("hazmat", False),
        "tags": f.strings("tags"),
    }
    f.check()
    return Product(**fields)


def _flatten_address(item: Mapping[str, Any]) -> dict[str, Any]:
    """A YAML location may nest its address; CSV columns are flat (``address_name`` for name)."""
    flat = {k: v for k, v in item.items() if k != "address"}
    nested = item.get("address")
    if isinstance(nested, Mapping):
        for key, value in nested.items():
            flat["address_name" if key == "name" else str(key)] = value
    return flat


def _records(
    rows: list[Row],
    problems: list[Problem],
    file: str,
    build: Callable[[Mapping[str, Any], datetime], Message],
    default_time: datetime,
) -> Parsed:
    records: list[Message] = []
    for row in rows:
        try:
            try:
                records.append(build(row.cells, default_time))
            except ValidationError as exc:
                raise RowError(describe_validation(exc)) from exc
        except RowError as exc:
            problems.append(Problem(file, row.line, str(exc), row.raw))
    problems.sort(key=lambda p: p.line)
    return Parsed(records, problems)


def _known_fields(
    rows: list[Row], problems: list[Problem], file: str, known: tuple[str, ...]
) -> list[Row]:
    """YAML items whose keys are all known; a misspelt key would otherwise lose its value."""
    good = []
    for row in rows:
        unknown = sorted(set(row.cells) - set(known))
        if unknown:
            reason = f"unknown field(s) {', '.join(unknown)}; known: {', '.join(known)}"
            problems.append(Problem(file, row.line, reason, row.raw))
        else:
            good.append(row)
    return good


def _is_yaml(file: str) -> bool:
    return PurePath(file).suffix.lower() in YAML_SUFFIXES


def parse_locations(text: str, file: str, default_time: datetime) -> Parsed:
    """Locations from CSV, or from YAML (``.yaml``/``.yml``: a list, or one under ``locations``)."""
    if _is_yaml(file):
        rows, problems = yaml_items(text, file, "locations")
        rows = [Row(r.line, r.raw, _flatten_address(r.cells)) for r in rows]
        rows = _known_fields(rows, problems, file, LOCATION_COLUMNS + LOCATION_OPTIONAL)
    else:
        rows, problems = read_csv(text, file, LOCATION_COLUMNS, LOCATION_OPTIONAL)
    return _records(rows, problems, file, _location, default_time)


def parse_products(text: str, file: str, default_time: datetime) -> Parsed:
    """Products from CSV, or from YAML (``.yaml``/``.yml``: a list, or one under ``products``)."""
    if _is_yaml(file):
        rows, problems = yaml_items(text, file, "products")
        rows = _known_fields(rows, problems, file, PRODUCT_COLUMNS + PRODUCT_OPTIONAL)
    else:
        rows, problems = read_csv(text, file, PRODUCT_COLUMNS, PRODUCT_OPTIONAL)
    return _records(rows, problems, file, _product, default_time)
