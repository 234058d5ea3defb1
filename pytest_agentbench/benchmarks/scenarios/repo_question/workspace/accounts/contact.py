"""Contact details: e-mail addresses and phone numbers, checked and normalized."""
import re

from .limits import limit
from .settings import BLOCKED_DOMAINS

_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


class InvalidContact(ValueError):
    pass


def check_address(address):
    """An e-mail address as stored: checked, domain lower-cased. Raises InvalidContact."""
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise InvalidContact("an e-mail address needs a local part, an @ and a domain")
    if len(address) > limit("email"):
        raise InvalidContact("e-mail address too long")
    if len(local) > limit("email_local"):
        raise InvalidContact(f"the part before the @ may have at most {limit('email_local')} characters")
    if not _LOCAL.match(local):
        raise InvalidContact("the part before the @ has characters we do not accept")
    labels = domain.lower().split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise InvalidContact("not a valid domain")
    domain = ".".join(labels)
    if domain in BLOCKED_DOMAINS:
        raise InvalidContact("addresses at this domain are not accepted")
    return f"{local}@{domain}"


def normalize_phone(number):
    """A phone number in E.164 form (+ and digits), or None for an empty one. Raises InvalidContact."""
    if not number or not number.strip():
        return None
    digits = re.sub(r"[\s().-]", "", number.strip())
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if not re.fullmatch(r"\+[1-9][0-9]+", digits) or len(digits) - 1 > limit("phone_digits"):
        raise InvalidContact("not a valid international phone number")
    return digits
