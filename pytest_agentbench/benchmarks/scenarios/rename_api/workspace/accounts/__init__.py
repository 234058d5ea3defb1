"""A tiny user directory: look users up, list them, and build reports."""
from .api import handle
from .reports import team_report, user_summary
from .users import get_user_data, list_users

__all__ = ["get_user_data", "handle", "list_users", "team_report", "user_summary"]
