from . import users
from .users import get_user_data


def user_summary(user_id):
    """One line about a user: "Ada Lovelace <ada@example.org> (analytics)"."""
    user = get_user_data(user_id)
    return f"{user['name']} <{user['email']}> ({user['team']})"


def team_report(team):
    """The names of a team's active members, sorted."""
    return sorted(u["name"] for u in users.list_users(active_only=True) if u["team"] == team)


def email_of(user_id):
    return users.get_user_data(user_id)["email"]
