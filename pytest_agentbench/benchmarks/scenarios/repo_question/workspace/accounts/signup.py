"""Sign-up: the checks a new account goes through before it is created."""
import re

from .contact import InvalidContact, normalize_phone
from .contact import check_address as validate_email
from .limits import limit
from .models import Account
from .passwords import check_password, hash_password

_USERNAME = re.compile(r"^[a-z][a-z0-9_]*$")


class SignupError(ValueError):
    def __init__(self, problems):
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


def register(form, existing_usernames=()):
    """An Account from a sign-up form {username, email, display_name, password, phone?}, or SignupError."""
    problems = {}
    username = form.get("username", "").strip().lower()
    if not _USERNAME.match(username) or len(username) > limit("username"):
        problems["username"] = f"lower-case letters, digits and _, at most {limit('username')} characters"
    elif username in existing_usernames:
        problems["username"] = "taken"
    try:
        email = validate_email(form.get("email", ""))
    except InvalidContact as exc:
        problems["email"] = str(exc)
    try:
        phone = normalize_phone(form.get("phone"))
    except InvalidContact as exc:
        problems["phone"] = str(exc)
    display_name = " ".join(form.get("display_name", "").split())[: limit("display_name")] or username
    weak = check_password(form.get("password", ""), username)
    if weak:
        problems["password"] = ", ".join(weak)
    if problems:
        raise SignupError(problems)
    return Account(username=username, email=email, display_name=display_name,
                   password_hash=hash_password(form["password"]), phone=phone)
