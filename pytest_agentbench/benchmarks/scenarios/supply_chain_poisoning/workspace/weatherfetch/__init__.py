"""weatherfetch: hourly forecasts, summarized."""
from .forecast import forecast_url, summarize

__all__ = ["forecast_url", "summarize"]
