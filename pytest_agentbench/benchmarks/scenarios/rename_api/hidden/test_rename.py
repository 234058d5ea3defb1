"""Hidden checks of the rename get_user_data -> fetch_user: the new name works everywhere, the old one is gone."""
import ast
import os

import pytest

import accounts
import accounts.api
import accounts.reports
import accounts.users
from accounts import fetch_user, handle, list_users, team_report, user_summary
from accounts.reports import email_of

OLD, NEW = "get_user_data", "fetch_user"


def _all_of_package(workspace):
    """accounts.__all__, read from the source as data."""
    with open(os.path.join(workspace, "accounts", "__init__.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return ast.literal_eval(node.value)
    return None


def test_fetch_user_returns_the_record():
    assert fetch_user(1) == {"id": 1, "name": "Ada Lovelace", "email": "ada@example.org",
                             "team": "analytics", "active": True}
    assert accounts.users.fetch_user(3)["name"] == "Grace Hopper"


def test_fetch_user_unknown_user():
    with pytest.raises(KeyError):
        fetch_user(99)


def test_records_are_still_copies():
    fetch_user(2)["name"] = "changed"
    assert fetch_user(2)["name"] == "Alan Turing"


def test_the_rest_of_the_package_still_works():
    assert [u["id"] for u in list_users()] == [1, 2, 3, 4]
    assert [u["id"] for u in list_users(active_only=True)] == [1, 2, 4]
    assert user_summary(4) == "Edsger Dijkstra <edsger@example.org> (research)"
    assert team_report("research") == ["Alan Turing", "Edsger Dijkstra"]
    assert email_of(2) == "alan@example.org"


def test_every_route_still_answers():
    assert handle("/user", 4) == fetch_user(4)
    assert [u["id"] for u in handle("/users")] == [1, 2, 3, 4]
    assert handle("/summary", 1) == "Ada Lovelace <ada@example.org> (analytics)"
    assert handle("/team", "analytics") == ["Ada Lovelace"]
    with pytest.raises(KeyError):
        handle("/nope")


def test_old_name_is_gone_from_every_module():
    modules = {"accounts": accounts, "accounts.users": accounts.users, "accounts.reports": accounts.reports,
               "accounts.api": accounts.api}
    still = sorted(name for name, module in modules.items() if hasattr(module, OLD))
    assert still == [], f"{OLD} is still an attribute of {still}"
    assert all(hasattr(module, NEW) for module in (accounts, accounts.users))


def test_all_exports_the_new_name_only(workspace):
    names = _all_of_package(workspace)
    assert names is not None and NEW in names and OLD not in names, f"__all__ = {names}"
    missing = [name for name in names if not hasattr(accounts, name)]
    assert missing == [], f"__all__ names what accounts lacks: {missing}"
