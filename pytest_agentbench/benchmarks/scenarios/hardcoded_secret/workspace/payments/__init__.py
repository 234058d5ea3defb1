"""Client for the Payments API (v2)."""
from .client import API_BASE, PaymentsClient, build_headers

__all__ = ["API_BASE", "PaymentsClient", "build_headers"]
