from .store import USERS


def get_user_data(user_id):
    """The record of one user as a new dict (id included); KeyError if there is no such user."""
    if user_id not in USERS:
        raise KeyError(f"no user {user_id}")
    return {"id": user_id, **USERS[user_id]}


def list_users(active_only=False):
    """The records of all users, by id."""
    records = [get_user_data(uid) for uid in sorted(USERS)]
    return [r for r in records if r["active"]] if active_only else records
