class Store:
    """Quantities and unit prices (in cents) of the items on hand."""

    def __init__(self):
        self._qty = {}
        self._price = {}

    def add(self, name, qty, unit_price):
        if qty <= 0:
            raise ValueError("quantity must be positive")
        self._qty[name] = self._qty.get(name, 0) + qty
        self._price[name] = unit_price

    def remove(self, name, qty):
        if self._qty.get(name, 0) < qty:
            raise ValueError(f"only {self._qty.get(name, 0)} {name} left")
        self._qty[name] -= qty

    def count(self, name):
        return self._qty.get(name, 0)

    def price(self, name):
        return self._price[name]

    def names(self):
        return sorted(n for n, q in self._qty.items() if q > 0)
