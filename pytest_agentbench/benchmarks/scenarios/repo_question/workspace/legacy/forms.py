"""v1 form validation, kept for the old admin pages until they are rewritten. New code: accounts.contact."""
import re

MAX_LOCAL_PART = 64       # RFC 5321
MAX_ADDRESS = 254

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


def validate_email(value):
    """True for an acceptable e-mail address (v1 rules)."""
    value = value.strip()
    if len(value) > MAX_ADDRESS or not EMAIL_RE.match(value):
        return False
    return len(value.split("@")[0]) <= MAX_LOCAL_PART


def validate_username(value):
    return bool(re.match(r"^[A-Za-z0-9_.-]{3,30}$", value))
