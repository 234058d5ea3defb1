from .units import UNITS


def format_duration(seconds):
    """A number of seconds (a non-negative int) as a duration string, largest unit first, zero parts left out.

    >>> format_duration(5415)
    '1h30m15s'
    >>> format_duration(86460)
    '1d1m'
    >>> format_duration(0)
    '0s'
    """
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise TypeError("seconds must be an int")
    if seconds < 0:
        raise ValueError("seconds must not be negative")
    parts = []
    for unit, size in UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
