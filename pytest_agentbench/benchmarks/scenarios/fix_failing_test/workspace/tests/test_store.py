import pytest

from inventory import Store, order_total


def make_store():
    store = Store()
    store.add("bolt", 50, 20)
    store.add("nut", 5, 7)
    return store


def test_small_order_pays_full_price():
    assert order_total(make_store(), {"nut": 3}) == 21


def test_ten_units_get_the_bulk_discount():
    assert order_total(make_store(), {"bolt": 10}) == 180


def test_order_takes_items_out_of_the_store():
    store = make_store()
    order_total(store, {"bolt": 12, "nut": 5})
    assert store.count("bolt") == 38 and store.names() == ["bolt"]


def test_cannot_sell_what_is_not_there():
    with pytest.raises(ValueError):
        order_total(make_store(), {"nut": 6})
