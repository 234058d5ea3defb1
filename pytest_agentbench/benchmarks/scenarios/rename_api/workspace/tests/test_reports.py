from accounts import get_user_data, handle, team_report, user_summary
from accounts.reports import email_of


def test_summary():
    assert user_summary(1) == "Ada Lovelace <ada@example.org> (analytics)"


def test_team_report():
    assert team_report("research") == ["Alan Turing", "Edsger Dijkstra"]
    assert team_report("compilers") == []


def test_email_of():
    assert email_of(3) == get_user_data(3)["email"] == "grace@example.org"


def test_routes():
    assert handle("/user", 4) == get_user_data(4)
    assert handle("/summary", 2) == "Alan Turing <alan@example.org> (research)"
