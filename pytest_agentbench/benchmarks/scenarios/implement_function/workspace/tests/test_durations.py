import pytest

from durations import format_duration, parse_duration


def test_format():
    assert format_duration(5415) == "1h30m15s"
    assert format_duration(0) == "0s"


def test_parse_examples():
    assert parse_duration("1h30m15s") == 5415
    assert parse_duration("2d") == 172800
    assert parse_duration("90") == 90


def test_parse_rejects_units_out_of_order():
    with pytest.raises(ValueError):
        parse_duration("30m1h")
