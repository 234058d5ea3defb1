"""Human-readable durations: `parse_duration("1h30m15s") == 5415`, `format_duration(5415) == "1h30m15s"`."""
from .format import format_duration
from .parse import parse_duration
from .units import UNITS

__all__ = ["UNITS", "format_duration", "parse_duration"]
