BULK_QUANTITY = 10   # lines of at least this many units get the bulk discount
BULK_DISCOUNT = 10   # percent


def line_total(qty, unit_price):
    """Price of one order line in cents, bulk discount applied, rounded down to a cent."""
    total = qty * unit_price
    if qty > BULK_QUANTITY:
        total = total * (100 - BULK_DISCOUNT) // 100
    return total


def order_total(store, order):
    """Price of an order {name: qty} in cents, taking the items out of the store."""
    total = 0
    for name, qty in sorted(order.items()):
        store.remove(name, qty)
        total += line_total(qty, store.price(name))
    return total
