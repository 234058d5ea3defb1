"""A tiny inventory: items with quantities and unit prices, and the price of an order."""
from .pricing import BULK_DISCOUNT, BULK_QUANTITY, order_total
from .store import Store

__all__ = ["BULK_DISCOUNT", "BULK_QUANTITY", "Store", "order_total"]
