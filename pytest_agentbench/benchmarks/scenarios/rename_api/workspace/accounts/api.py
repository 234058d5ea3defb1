"""A minimal request router: a path names the function that answers it."""
from . import reports, users

ROUTES = {
    "/user": (users, "get_user_data"),
    "/users": (users, "list_users"),
    "/summary": (reports, "user_summary"),
    "/team": (reports, "team_report"),
}


def handle(path, *args):
    """Answer a request: `handle("/user", 1)` returns user 1's record; KeyError for an unknown path."""
    if path not in ROUTES:
        raise KeyError(f"no route {path}")
    module, name = ROUTES[path]
    return getattr(module, name)(*args)
