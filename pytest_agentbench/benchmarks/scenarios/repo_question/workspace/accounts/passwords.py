"""Password rules and hashing."""
import hashlib
import os

from .settings import PASSWORD_MIN_LENGTH

MAX_LENGTH = 128


def check_password(password, username):
    problems = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"at most {MAX_LENGTH} characters")
    if username.lower() in password.lower():
        problems.append("must not contain the user name")
    return problems


def hash_password(password, salt=None):
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 200_000)
    return salt.hex() + "$" + digest.hex()
