"""Cartonization: box choice, overflow, fragile and protective packing, the catalogue loader."""

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.models import Carton, Product, ShipmentLine
from streams.core.packing.cartons import (
    DEFAULT_DIMS_MM,
    DEFAULT_WEIGHT_GRAMS,
    OVERSIZE,
    BoxCatalogue,
    BoxType,
    CartonPlan,
    CatalogueError,
    PackedCarton,
    Unit,
    _first_fit_decreasing,
    _OpenCarton,
    _packing_order,
    cartonize,
    cartonize_shipment,
    default_catalogue,
    load_catalogue,
    unit_of,
    units_for,
)
from tests.unit.factories import make_product

BOXES_YAML = Path(__file__).resolve().parents[2] / "deploy" / "cartons" / "boxes.yaml"
CATALOGUE = default_catalogue()


def line(sku: str, quantity: int = 1, line_id: str | None = None) -> ShipmentLine:
    return ShipmentLine(line_id=line_id or f"L-{sku}", sku=sku, quantity=quantity)


def pack(
    lines: list[ShipmentLine],
    products: list[Product],
    catalogue: BoxCatalogue = CATALOGUE,
    *,
    protective: bool = False,
) -> CartonPlan:
    by_sku = {p.sku: p for p in products}
    return cartonize_shipment(lines, by_sku, catalogue, protective=protective)


def boxes(plan: CartonPlan) -> list[str]:
    return [c.box_type for c in plan.cartons]


def fits(unit: Unit, box: BoxType) -> bool:
    """The unit, turned some way, goes into the box, and the box carries its weight."""
    dims_fit = all(a <= b for a, b in zip(unit.dims_mm, box.dims_mm, strict=True))
    return dims_fit and unit.weight_grams <= box.max_weight_grams


def one_box_catalogue(max_weight_grams: int = 100_000) -> BoxCatalogue:
    """A single 300 mm cube, carrying 100 kg unless told otherwise."""
    return BoxCatalogue((BoxType("CUBE", 300, 300, 300, max_weight_grams),), fill_factor=0.85)


# --- box choice ---------------------------------------------------------------------------


def test_a_small_item_fits_in_one_mailer() -> None:
    plan = pack([line("SKU-1")], [make_product("SKU-1")])  # 200x100x50 mm, 500 g

    assert plan.cartons == (Carton(box_type="MAILER-S", skus=("SKU-1",)),)
    assert "MAILER-S" in plan.explanation


def test_picks_the_smallest_box_that_holds_everything() -> None:
    product = make_product("SKU-1")  # 1 000 000 mm3; a mailer takes 2 295 000 after fill

    assert boxes(pack([line("SKU-1", 2)], [product])) == ["MAILER-S"]
    assert boxes(pack([line("SKU-1", 3)], [product])) == ["BOX-S"]
    assert pack([line("SKU-1", 3)], [product]).cartons[0].skus == ("SKU-1",) * 3


def test_prefers_one_bigger_box_over_two_small_ones() -> None:
    product = make_product("SKU-1")

    plan = pack([line("SKU-1", 7)], [product])  # 7 dm3: one BOX-S, not four mailers

    assert boxes(plan) == ["BOX-S"]


def test_a_single_snug_item_ships_in_its_own_size_of_box() -> None:
    # The fill factor leaves room around several items; one item cut to the box is fine.
    snug = make_product("SNUG", length_mm=250, width_mm=180, height_mm=60, weight_grams=900)

    assert boxes(pack([line("SNUG")], [snug])) == ["MAILER-S"]


def test_orientation_a_long_thin_item_goes_in_the_tube() -> None:
    # Given upright (height is the long side): only the tube is long enough, lying down.
    rod = make_product("ROD", length_mm=60, width_mm=80, height_mm=900, weight_grams=1200)

    plan = pack([line("ROD")], [rod])

    assert boxes(plan) == ["TUBE-L"]


def test_orientation_an_item_listed_on_its_side_still_fits_the_mailer() -> None:
    book = make_product("BOOK", length_mm=50, width_mm=170, height_mm=240, weight_grams=700)

    assert boxes(pack([line("BOOK")], [book])) == ["MAILER-S"]


# --- overflow ---------------------------------------------------------------------------


def test_overflow_by_volume_opens_a_second_carton() -> None:
    cube = make_product("CUBE-200", length_mm=200, width_mm=200, height_mm=200, weight_grams=100)

    plan = pack([line("CUBE-200", 3)], [cube], one_box_catalogue())  # two 8 dm3 fit 22.95 dm3

    assert [len(c.skus) for c in plan.cartons] == [2, 1]
    assert boxes(plan) == ["CUBE", "CUBE"]


def test_overflow_by_weight_opens_a_second_carton() -> None:
    brick = make_product("BRICK", length_mm=50, width_mm=50, height_mm=50, weight_grams=400)

    plan = pack([line("BRICK", 3)], [brick], one_box_catalogue(max_weight_grams=1000))

    assert [len(c.skus) for c in plan.cartons] == [2, 1]


def test_overflow_beyond_the_largest_box_downsizes_the_last_carton() -> None:
    item = make_product("ITEM", length_mm=300, width_mm=200, height_mm=100, weight_grams=100)

    plan = pack([line("ITEM", 40)], [item])  # 6 dm3 each; an XL takes 17 (102 dm3)

    assert boxes(plan) == ["BOX-XL", "BOX-XL", "BOX-L"]
    assert [len(c.skus) for c in plan.cartons] == [17, 17, 6]


def test_overflow_by_weight_in_the_default_catalogue() -> None:
    dumbbell = make_product("DB-8KG", length_mm=250, width_mm=100, height_mm=100, weight_grams=8000)

    plan = pack([line("DB-8KG", 4)], [dumbbell])  # 32 kg: more than any box carries

    assert len(plan.cartons) == 2
    for packed in plan.packed:
        assert packed.box is not None
        assert packed.weight_grams <= packed.box.max_weight_grams


# --- fragile and protective --------------------------------------------------------------


def test_fragile_items_are_packed_apart_and_padded() -> None:
    glass = make_product("GLASS", fragile=True, weight_grams=300)
    shirt = make_product("SHIRT")

    plan = pack([line("SHIRT"), line("GLASS")], [glass, shirt])

    assert plan.cartons == (
        Carton(box_type="MAILER-S", skus=("SHIRT",)),
        Carton(box_type="PADDED-S", skus=("GLASS",)),
    )
    assert "fragile" in plan.explanation


def test_fragile_items_share_a_carton_with_each_other() -> None:
    glass = make_product("GLASS", fragile=True, weight_grams=300)
    vase = make_product("VASE", fragile=True, weight_grams=400)

    plan = pack([line("GLASS"), line("VASE")], [glass, vase])

    assert plan.cartons == (Carton(box_type="PADDED-S", skus=("GLASS", "VASE")),)


def test_fragile_without_protective_boxes_still_ships_apart() -> None:
    glass = make_product("GLASS", fragile=True)
    shirt = make_product("SHIRT")
    catalogue = BoxCatalogue(tuple(b for b in CATALOGUE.boxes if not b.protective))

    plan = pack([line("SHIRT"), line("GLASS")], [glass, shirt], catalogue)

    assert [c.skus for c in plan.cartons] == [("SHIRT",), ("GLASS",)]


def test_protective_flag_puts_everything_in_protective_boxes() -> None:
    shirt = make_product("SHIRT")
    mug = make_product("MUG", length_mm=120, width_mm=90, height_mm=100, weight_grams=350)

    plan = pack([line("SHIRT", 2), line("MUG")], [shirt, mug], protective=True)

    assert all(CATALOGUE.box(b).protective for b in boxes(plan))
    assert Counter(s for c in plan.cartons for s in c.skus) == {"SHIRT": 2, "MUG": 1}


def test_protective_flag_falls_back_when_no_protective_box_fits() -> None:
    rod = make_product("ROD", length_mm=900, width_mm=60, height_mm=60, weight_grams=1200)

    assert boxes(pack([line("ROD")], [rod], protective=True)) == ["TUBE-L"]


# --- unknown sizes and oversize ------------------------------------------------------------


def test_unknown_dimensions_take_the_documented_default() -> None:
    mystery = make_product("MYSTERY", length_mm=None, width_mm=None, height_mm=None)
    unit = unit_of("MYSTERY", mystery)

    assert unit.dims_mm == tuple(sorted(DEFAULT_DIMS_MM, reverse=True))
    assert unit.weight_grams == 500 and unit.assumed
    plan = pack([line("MYSTERY")], [mystery])
    assert boxes(plan) == ["BOX-S"]
    assert "MYSTERY" in plan.explanation and "assumed" in plan.explanation


def test_a_sku_missing_from_master_data_gets_default_size_and_weight() -> None:
    unit = unit_of("GHOST", None)

    assert unit.weight_grams == DEFAULT_WEIGHT_GRAMS and unit.assumed and not unit.fragile
    plan = pack([line("GHOST")], [])
    assert plan.cartons[0].skus == ("GHOST",)


def test_only_the_missing_fields_are_defaulted() -> None:
    flat = make_product("FLAT", height_mm=None, weight_grams=None)

    unit = unit_of("FLAT", flat)

    assert unit.dims_mm == (200, 100, DEFAULT_DIMS_MM[2])
    assert unit.weight_grams == DEFAULT_WEIGHT_GRAMS


def test_an_item_too_big_for_any_box_ships_alone_as_oversize() -> None:
    sofa = make_product("SOFA", length_mm=2000, width_mm=900, height_mm=800, weight_grams=40_000)
    shirt = make_product("SHIRT")

    plan = pack([line("SOFA", 2), line("SHIRT")], [sofa, shirt])

    assert plan.cartons == (
        Carton(box_type="MAILER-S", skus=("SHIRT",)),
        Carton(box_type=OVERSIZE, skus=("SOFA",)),
        Carton(box_type=OVERSIZE, skus=("SOFA",)),
    )
    assert "fits no box" in plan.explanation


def test_an_item_too_heavy_for_any_box_ships_as_oversize() -> None:
    anvil = make_product("ANVIL", length_mm=300, width_mm=200, height_mm=150, weight_grams=50_000)

    assert boxes(pack([line("ANVIL")], [anvil])) == [OVERSIZE]


def test_nothing_to_pack() -> None:
    plan = cartonize((), CATALOGUE)

    assert plan.cartons == () and plan.explanation == "nothing to pack"


# --- determinism ----------------------------------------------------------------------------


def test_same_units_in_any_order_give_the_same_cartons() -> None:
    products = [
        make_product("A"),
        make_product("B", length_mm=300, width_mm=250, height_mm=150, weight_grams=2500),
        make_product("C", fragile=True),
        make_product("D", length_mm=800, width_mm=50, height_mm=50),
    ]
    lines = [line("A", 5), line("B", 2), line("C", 3), line("D")]

    first = pack(lines, products)

    assert pack(list(reversed(lines)), list(reversed(products))) == first
    split = [line("A", 2, "L1"), line("D"), line("A", 3, "L2"), line("C", 3), line("B", 2)]
    assert pack(split, products).cartons == first.cartons


# --- catalogue ------------------------------------------------------------------------------


def test_the_shipped_catalogue_file_is_the_built_in_default() -> None:
    assert load_catalogue(BOXES_YAML.read_text()) == default_catalogue()


def test_catalogue_orders_boxes_smallest_first() -> None:
    volumes = [b.volume_mm3 for b in CATALOGUE.boxes]

    assert volumes == sorted(volumes)
    assert CATALOGUE.box("BOX-M").dims_mm == (400, 300, 200)


def test_loads_a_minimal_catalogue_with_defaults() -> None:
    catalogue = load_catalogue(
        "boxes:\n  - {box_type: B, length_mm: 10, width_mm: 20, height_mm: 30,"
        " max_weight_grams: 100}\n"
    )

    assert catalogue.fill_factor == 0.85
    assert catalogue.boxes == (BoxType("B", 10, 20, 30, 100),)


GOOD = {"length_mm": 100, "width_mm": 100, "height_mm": 100, "max_weight_grams": 1000}


def _yaml(*entries: dict[str, object], head: str = "") -> str:
    def entry(e: dict[str, object]) -> str:
        return "  - {" + ", ".join(f"{k}: {v}" for k, v in e.items()) + "}\n"

    return head + "boxes:\n" + "".join(entry(e) for e in entries)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("boxes: [", "not valid YAML"),
        ("- a\n- b\n", "must be a mapping"),
        ("boxes: []\n", "non-empty 'boxes'"),
        ("box: []\n", "unknown keys ['box']"),
        (_yaml({"box_type": "A", **GOOD}, head="fill_factor: 1.5\n"), "fill_factor"),
        (_yaml({"box_type": "A", **GOOD}, head="fill_factor: lots\n"), "fill_factor"),
        (_yaml({**GOOD}), r"boxes[0]: box_type"),
        (
            _yaml({"box_type": "A", **GOOD}, {"box_type": "B", "length_mm": 5}),
            "boxes[1] (B): width_mm is required",
        ),
        (_yaml({"box_type": "A", **{**GOOD, "height_mm": -3}}), "boxes[0] (A): height_mm must be"),
        (
            _yaml({"box_type": "A", **{**GOOD, "height_mm": "true"}}),
            "boxes[0] (A): height_mm must be",
        ),
        (_yaml({"box_type": "A", **{**GOOD, "height_mm": 1.5}}), "boxes[0] (A): height_mm must be"),
        (_yaml({"box_type": "A", **GOOD, "protective": "maybe"}), "boxes[0] (A): protective"),
        (_yaml({"box_type": "A", **GOOD, "cost": -1}), "boxes[0] (A): cost"),
        (
            _yaml({"box_type": "A", **GOOD, "colour": "red"}),
            "boxes[0] (A): unknown keys ['colour']",
        ),
        (_yaml({"box_type": "A", **GOOD}, {"box_type": "A", **GOOD}), "'A' appears twice"),
        (_yaml({"box_type": OVERSIZE, **GOOD}), "reserved"),
        ("boxes:\n  - just a string\n", "boxes[0]: must be a mapping"),
    ],
)
def test_catalogue_errors_name_the_entry_and_field(text: str, message: str) -> None:
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(text)

    assert message in str(caught.value)


# --- properties -----------------------------------------------------------------------------

_size = st.one_of(st.none(), st.integers(min_value=1, max_value=1200))
_products = st.lists(
    st.builds(
        lambda i, length, width, height, weight, fragile: make_product(
            f"SKU-{i}",
            length_mm=length,
            width_mm=width,
            height_mm=height,
            weight_grams=weight,
            fragile=fragile,
        ),
        st.integers(min_value=0, max_value=5),
        _size,
        _size,
        _size,
        st.one_of(st.none(), st.integers(min_value=1, max_value=35_000)),
        st.booleans(),
    ),
    min_size=1,
    max_size=5,
    unique_by=lambda p: p.sku,
)


@settings(max_examples=200, deadline=None)
@given(
    products=_products,
    quantities=st.lists(st.integers(min_value=1, max_value=12), min_size=5, max_size=5),
    protective=st.booleans(),
)
def test_every_unit_is_packed_once_within_its_box_limits(
    products: list[Product], quantities: list[int], protective: bool
) -> None:
    lines = [line(p.sku, q) for p, q in zip(products, quantities, strict=False)]
    by_sku = {p.sku: p for p in products}

    plan = cartonize_shipment(lines, by_sku, CATALOGUE, protective=protective)

    wanted = Counter({ln.sku: ln.quantity for ln in lines})
    assert Counter(s for c in plan.cartons for s in c.skus) == wanted
    for packed in plan.packed:
        assert len({u.fragile for u in packed.units}) == 1
        if packed.box is None:
            assert packed.box_type == OVERSIZE and len(packed.units) == 1
            continue
        box = packed.box
        assert packed.weight_grams <= box.max_weight_grams
        assert all(fits(u, box) for u in packed.units)
        if len(packed.units) > 1:
            assert sum(u.volume_mm3 for u in packed.units) <= CATALOGUE.capacity_mm3(box)


@settings(max_examples=100, deadline=None)
@given(products=_products, protective=st.booleans())
def test_fragile_units_go_in_protective_boxes_whenever_one_takes_them(
    products: list[Product], protective: bool
) -> None:
    units = units_for([line(p.sku, 2) for p in products], {p.sku: p for p in products})

    plan = cartonize(units, CATALOGUE, protective=protective)

    for packed in plan.packed:
        for unit in packed.units:
            padded_fits = any(fits(unit, box) for box in CATALOGUE.protective_boxes)
            if (unit.fragile or protective) and padded_fits:
                assert packed.box is not None and packed.box.protective


def test_a_long_line_is_packed_in_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """A carton that refused a unit is not asked again for its twins: a line of 100,000 units
    (the most a line may ask for) once tried every open carton for every unit, which took
    minutes and stopped the worker's every stage meanwhile."""
    tries = 0
    try_add = _OpenCarton.try_add

    def counted(self: _OpenCarton, unit: Unit, catalogue: BoxCatalogue) -> bool:
        nonlocal tries
        tries += 1
        return try_add(self, unit, catalogue)

    monkeypatch.setattr(_OpenCarton, "try_add", counted)
    products = [make_product("A"), make_product("B", length_mm=10, width_mm=10, height_mm=10)]

    plan = pack([line("A", 10_000), line("B", 10_000)], products)

    assert Counter(s for c in plan.cartons for s in c.skus) == {"A": 10_000, "B": 10_000}
    assert len(plan.cartons) > 100
    assert tries < 3 * 20_000


def _every_carton_tried(units: list[Unit], boxes: tuple[BoxType, ...]) -> list[PackedCarton]:
    """First-fit decreasing as it was written first: every open carton, for every unit."""
    cartons: list[_OpenCarton] = []
    for unit in units:
        if not any(c.try_add(unit, CATALOGUE) for c in cartons):
            alone = tuple(b for b in boxes if fits(unit, b))
            cartons.append(_OpenCarton([unit], unit.volume_mm3, unit.weight_grams, alone))
    return [PackedCarton(c.boxes[0].box_type, tuple(c.units), c.boxes[0]) for c in cartons]


@settings(max_examples=200, deadline=None)
@given(products=_products, quantities=st.lists(st.integers(1, 40), min_size=1, max_size=6))
def test_packing_from_the_last_carton_changes_no_plan(
    products: list[Product], quantities: list[int]
) -> None:
    lines = [line(p.sku, q) for p, q in zip(products, quantities, strict=False)]
    units = sorted(units_for(lines, {p.sku: p for p in products}), key=_packing_order)
    units = [u for u in units if any(fits(u, b) for b in CATALOGUE.standard_boxes)]

    assert _first_fit_decreasing(units, CATALOGUE.standard_boxes, CATALOGUE) == (
        _every_carton_tried(units, CATALOGUE.standard_boxes)
    )
