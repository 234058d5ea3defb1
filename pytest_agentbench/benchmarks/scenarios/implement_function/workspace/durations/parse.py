from .units import UNITS


def parse_duration(text):
    """The number of seconds (an int) in a duration string such as "1h30m15s".

    Format:
    - A duration is one or more parts, each a number immediately followed by a unit:
      `d` (day, 86400 s), `h` (hour, 3600 s), `m` (minute, 60 s), `s` (second). Units are case-insensitive
      ("1H30M" is the same as "1h30m").
    - A number is one or more ASCII digits 0-9 (leading zeros are fine: "05m" is 300). No sign, no decimal
      point, no exponent, no digit separators, no other kinds of digits.
    - Units appear largest first, each at most once: "1h30m" is valid, "30m1h" and "1m1m" are not.
      A part may exceed the next unit up: "90m" is 5400 and "48h" is 172800.
    - Whitespace (spaces, tabs) is allowed before the first part, after the last one and between parts, but not
      between a number and its unit: "1h 30m" is valid, "1 h" is not.
    - A string that is only a number (after stripping whitespace) is a number of seconds: "90" is 90. In a
      duration with several parts every number needs a unit: "1h30" is not valid.

    Errors:
    - TypeError if `text` is not a str.
    - ValueError for any other invalid input: an empty or all-whitespace string, an unknown unit, a unit without
      a number, a number without a unit in a duration of several parts, units out of order or repeated, signs,
      decimals, or any other character.

    >>> parse_duration("1h30m15s")
    5415
    >>> parse_duration("2d")
    172800
    >>> parse_duration(" 1h 30m ")
    5400
    >>> parse_duration("90m")
    5400
    >>> parse_duration("1H30M")
    5400
    >>> parse_duration("90")
    90
    >>> parse_duration("0s")
    0
    >>> parse_duration("30m1h")
    Traceback (most recent call last):
    ...
    ValueError: ...
    """
    raise NotImplementedError
