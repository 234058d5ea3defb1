import pytest

from accounts import SignupError, register

FORM = {"username": "ada_l", "email": "Ada.Lovelace@Example.ORG", "display_name": "Ada  Lovelace",
        "password": "analytical-engine-1843"}


def test_register():
    account = register(FORM)
    assert (account.username, account.email, account.display_name) == ("ada_l", "Ada.Lovelace@example.org",
                                                                       "Ada Lovelace")


def test_bad_email():
    with pytest.raises(SignupError) as info:
        register({**FORM, "email": "ada@localhost"})
    assert "email" in info.value.problems


def test_weak_password():
    with pytest.raises(SignupError) as info:
        register({**FORM, "password": "short"})
    assert set(info.value.problems) == {"password"}
