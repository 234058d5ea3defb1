"""stocksync: warehouse stock levels into the shop catalogue."""
from .mapping import to_catalogue
from .sync import sync

__all__ = ["sync", "to_catalogue"]
