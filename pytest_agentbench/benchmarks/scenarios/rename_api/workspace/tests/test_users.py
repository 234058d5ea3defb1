import pytest

from accounts import get_user_data, list_users


def test_get_user_data_returns_the_record():
    assert get_user_data(1) == {"id": 1, "name": "Ada Lovelace", "email": "ada@example.org",
                                "team": "analytics", "active": True}


def test_get_user_data_unknown_user():
    with pytest.raises(KeyError):
        get_user_data(99)


def test_records_are_copies():
    get_user_data(2)["name"] = "changed"
    assert get_user_data(2)["name"] == "Alan Turing"


def test_list_users():
    assert [u["id"] for u in list_users()] == [1, 2, 3, 4]
    assert [u["id"] for u in list_users(active_only=True)] == [1, 2, 4]
