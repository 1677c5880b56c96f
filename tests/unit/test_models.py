"""The pydantic models: validation rules, immutability, and agreement with the Avro files."""

import json
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from schemas import enums
from schemas.models import (
    TOP_LEVEL_MODELS,
    Channel,
    DomModel,
    FulfillmentKind,
    OrderLine,
    StockEventKind,
)
from schemas.store import AVRO_DIR, default_store
from tests.unit.factories import (
    FACTORIES,
    make_address,
    make_fulfillment_command,
    make_line,
    make_order,
    make_product,
    make_rule,
    make_stock_event,
)


def errors_of(excinfo: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return {".".join(map(str, e["loc"])): e["msg"] for e in excinfo.value.errors()}


def test_money_is_rounded_half_even_to_cents() -> None:
    assert make_line(unit_price="1.005").unit_price == Decimal("1.00")
    assert make_line(unit_price="1.015").unit_price == Decimal("1.02")
    assert make_line(unit_price=19.99).unit_price == Decimal("19.99")
    assert make_line(unit_price=3).unit_price.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ("-0.01", "Input should be greater than or equal to 0"),
        ("10000000000000000", "Value error, must have at most 18 digits"),
        ("NaN", "Input should be a finite number"),
    ],
)
def test_money_out_of_range_is_rejected(price: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make_line(unit_price=price)
    assert errors_of(caught)["unit_price"].startswith(message)


def test_largest_money_is_accepted() -> None:
    assert make_product(unit_price="9999999999999999.99").unit_price == Decimal(
        "9999999999999999.99"
    )


def test_times_are_utc_milliseconds() -> None:
    naive = make_order(placed_at=datetime(2024, 1, 1, 12, 0, 0, 123456))
    paris = make_order(placed_at=datetime(2024, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))))

    assert naive.placed_at == datetime(2024, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert naive.placed_at.tzinfo is UTC
    assert paris.placed_at == datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert paris.placed_at.tzinfo is UTC


def test_line_rules() -> None:
    with pytest.raises(ValidationError) as caught:
        OrderLine(line_id=" ", sku="", quantity=0, unit_price=Decimal(1))
    assert errors_of(caught) == {
        "line_id": "Value error, must not be empty or blank",
        "sku": "Value error, must not be empty or blank",
        "quantity": "Input should be greater than 0",
    }
    with pytest.raises(ValidationError):
        make_line(quantity=2**31)


def test_address_rules() -> None:
    with pytest.raises(ValidationError) as caught:
        make_address(country="us", lat=90.5, lon=-181)
    assert set(errors_of(caught)) == {"country", "lat", "lon"}
    assert make_address(lat=-90, lon=180).lon == 180


def test_order_rules() -> None:
    with pytest.raises(ValidationError, match="line_id '1' appears more than once"):
        make_order(lines=[make_line("1"), make_line("1", sku="SKU-2")])
    with pytest.raises(ValidationError, match="ISO 4217"):
        make_order(currency="dollars")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        make_order(coupon="X")


def test_routing_questions_are_not_validation_errors() -> None:
    # A SHIP order without an address must reach routing, which rejects it with a reason.
    assert make_order(ship_to=None, lines=[]).ship_to is None


def test_stock_levels() -> None:
    assert make_stock_event(kind=StockEventKind.ADJUSTMENT, quantity=-5).quantity == -5
    for kind in (StockEventKind.SNAPSHOT, StockEventKind.SAFETY_STOCK):
        with pytest.raises(ValidationError, match="quantity must be >= 0"):
            make_stock_event(kind=kind, quantity=-1)


def test_transfer_needs_a_destination() -> None:
    with pytest.raises(ValidationError, match="TRANSFER needs destination_location_id"):
        make_fulfillment_command(kind=FulfillmentKind.TRANSFER)


def test_models_are_frozen_and_hashable() -> None:
    order = make_order(lines=[("SKU-1", 1), ("SKU-2", 3)], tags=["a"])

    assert isinstance(order.lines, tuple) and isinstance(order.tags, tuple)
    with pytest.raises(ValidationError):
        order.order_id = "other"
    assert len({order, make_order(lines=[("SKU-1", 1), ("SKU-2", 3)], tags=["a"])}) == 1
    assert hash(make_rule()) == hash(make_rule())
    assert make_order(channel="WEB").channel is Channel.WEB


@given(st.decimals(min_value=0, max_value=Decimal("9999999999999999.994"), places=3))
def test_money_always_has_two_places(value: Decimal) -> None:
    price = make_line(unit_price=value).unit_price

    assert price.as_tuple().exponent == -2
    assert abs(price - value) <= Decimal("0.005")


# -- the models mirror the Avro records --------------------------------------------------------


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model class inside X, X | None or tuple[X, ...], if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, tuple):
        for arg in typing.get_args(annotation):
            found = nested_model(arg)
            if found is not None:
                return found
    return None


def record_of(avro_type: Any, names: dict[str, Any]) -> dict[str, Any] | None:
    if isinstance(avro_type, str):
        avro_type = names.get(avro_type, avro_type)
    if isinstance(avro_type, list):
        return next((r for t in avro_type if (r := record_of(t, names))), None)
    if isinstance(avro_type, dict) and avro_type["type"] == "array":
        return record_of(avro_type["items"], names)
    if isinstance(avro_type, dict) and avro_type["type"] == "record":
        names[avro_type["name"]] = avro_type
        return avro_type
    return None


def assert_mirrors(model: type[BaseModel], record: dict[str, Any], names: dict[str, Any]) -> None:
    assert model.__name__ == record["name"].rsplit(".", 1)[-1]
    assert list(model.model_fields) == [field["name"] for field in record["fields"]]
    for field in record["fields"]:
        info = model.model_fields[field["name"]]
        where = f"{model.__name__}.{field['name']}"
        assert info.is_required() == ("default" not in field), where
        if "default" in field:
            # Avro arrays default to [], which the models hold as tuples.
            expected = field["default"]
            expected = tuple(expected) if isinstance(expected, list) else expected
            assert info.get_default(call_default_factory=True) == expected, where
        inner = nested_model(info.annotation)
        inner_record = record_of(field["type"], names)
        assert (inner is None) == (inner_record is None), where
        if inner is not None and inner_record is not None:
            assert_mirrors(inner, inner_record, names)


@pytest.mark.parametrize("name", sorted(TOP_LEVEL_MODELS))
def test_model_fields_and_defaults_mirror_the_avro_record(name: str) -> None:
    model = TOP_LEVEL_MODELS[name]

    assert model.avro_name == name
    assert issubclass(model, DomModel)
    assert isinstance(FACTORIES[name](), model)
    assert_mirrors(model, default_store().standalone(name), {})


def test_enums_have_the_avro_symbols() -> None:
    store = default_store()
    members: dict[str, type[StrEnum]] = {
        name: cls
        for name, cls in vars(enums).items()
        if isinstance(cls, type) and issubclass(cls, StrEnum) and cls is not StrEnum
    }
    avro_enums = [n for n in store.named_types if n.rsplit(".", 1)[-1] in members]
    assert len(avro_enums) == len(members)
    for name in avro_enums:
        schema = json.loads((AVRO_DIR / f"{name.rsplit('.', 1)[-1]}.avsc").read_text())
        assert schema["type"] == "enum"
        assert [m.value for m in members[schema["name"]]] == schema["symbols"]
