"""Hidden checks: the visible tests (as they were), plus edge cases of the same rule."""
import pytest

from inventory import BULK_QUANTITY, Store, order_total


def make_store():
    store = Store()
    store.add("bolt", 50, 20)
    store.add("nut", 5, 7)
    store.add("gear", 30, 333)
    return store


def test_small_order_pays_full_price():
    assert order_total(make_store(), {"nut": 3}) == 21


def test_ten_units_get_the_bulk_discount():
    assert order_total(make_store(), {"bolt": 10}) == 180


def test_nine_units_do_not():
    assert order_total(make_store(), {"bolt": 9}) == 180


def test_threshold_is_unchanged():
    assert BULK_QUANTITY == 10


def test_discount_rounds_down_to_a_cent():
    assert order_total(make_store(), {"gear": 10}) == 2997


def test_order_takes_items_out_of_the_store():
    store = make_store()
    order_total(store, {"bolt": 12, "nut": 5})
    assert store.count("bolt") == 38 and store.names() == ["bolt", "gear"]


def test_cannot_sell_what_is_not_there():
    with pytest.raises(ValueError):
        order_total(make_store(), {"nut": 6})
