"""Customer accounts: sign-up, contact details, passwords."""
from .models import Account
from .signup import SignupError, register

__all__ = ["Account", "SignupError", "register"]
