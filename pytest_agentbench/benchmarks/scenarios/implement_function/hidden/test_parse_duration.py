"""Hidden checks of parse_duration: the documented examples, the rules one by one, and the errors."""
import pytest

from durations import UNITS, format_duration, parse_duration

VALID = {
    # the docstring's examples
    "1h30m15s": 5415, "2d": 172800, " 1h 30m ": 5400, "90m": 5400, "1H30M": 5400, "90": 90, "0s": 0,
    # every unit alone and all together
    "1d": 86400, "1h": 3600, "1m": 60, "1s": 1, "1d2h3m4s": 93784, "3d4s": 259204, "2h5s": 7205,
    # case
    "1D": 86400, "2h3M": 7380, "1d1H1m1S": 90061,
    # numbers
    "05m": 300, "007": 7, "0": 0, "0d0h0m0s": 0, "48h": 172800, "100000h": 360000000, "3600s": 3600,
    "12345678901234567890s": 12345678901234567890,
    # whitespace around and between parts, spaces and tabs
    "  45s": 45, "45s  ": 45, "\t1h\t": 3600, "1h  30m  15s": 5415, "1h\t30m": 5400, "1d 1s": 86401, " 90 ": 90,
}

INVALID = [
    "", " ", "\t \t",                                   # nothing
    "h", "m", "1hm", "s1", "1h m",                      # a unit without a number
    "1h30", "1 2", "1h 30", "30 1h",                    # a number without a unit among several parts
    "1 h", "1h 30 m",                                   # whitespace inside a part
    "30m1h", "1s1m", "1m1h", "1s1d", "1h 1d",           # out of order
    "1h1h", "1m1m", "1d 1d", "1h2H",                    # repeated
    "10x", "1w", "1ms", "1hr", "1min", "5sec", "1y",    # unknown units
    "1.5h", "1,5h", "-5m", "+5m", "-1", "+1", "1e3s", "1_000s", "0x10s",  # signs, decimals, separators
    "1h,30m", "1h;30m", "1h-30m", "(1h)", "1h!", "1h\n30m",  # other characters (a newline is not a blank)
    "\u0661\u0662s", "\uff11h", "\u00b2s", "\u0661\u0662",  # digits that are not ASCII
]


def test_valid_durations():
    wrong = []
    for text, want in VALID.items():
        try:
            got = parse_duration(text)
        except ValueError as exc:
            got = f"ValueError: {exc}"
        if got != want:
            wrong.append((text, got, want))
    assert wrong == [], f"(text, got, expected): {wrong}"


def test_results_are_ints():
    assert all(type(parse_duration(text)) is int for text in ("1h30m15s", "90", "0s", "2D"))


def test_documented_errors():
    for text in ("30m1h", "1h30", "1 h", ""):
        with pytest.raises(ValueError):
            parse_duration(text)


def test_each_invalid_string_raises_value_error():
    accepted = []
    for text in INVALID:
        try:
            value = parse_duration(text)
        except ValueError:
            continue
        accepted.append((text, value))
    assert accepted == [], f"accepted invalid input (text, result): {accepted}"


def test_not_a_string_raises_type_error():
    for value in (90, 1.5, None, b"1h", ["1h"]):
        with pytest.raises(TypeError):
            parse_duration(value)


def test_round_trip_with_format_duration():
    numbers = [0, 1, 59, 60, 61, 3599, 3600, 3661, 5415, 86399, 86400, 86460, 90061, 172800, 10**9]
    assert [parse_duration(format_duration(n)) for n in numbers] == numbers


def test_round_trip_upper_case_and_spaced():
    for n in (5415, 93784, 86460, 7):
        spaced = format_duration(n)
        for unit in UNITS:
            spaced = spaced.replace(unit, unit.upper() + " ")
        assert parse_duration(spaced) == n, spaced


def test_units_unchanged():
    assert UNITS == {"d": 86400, "h": 3600, "m": 60, "s": 1}
