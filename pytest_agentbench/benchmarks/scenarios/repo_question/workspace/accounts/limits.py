"""Length limits of account fields.

The defaults follow the standards (RFC 5321 for e-mail: 64 octets of local part, 254 in all); a deployment
lowers some of them in accounts/settings.py.
"""
DEFAULTS = {
    "username": 32,
    "display_name": 80,
    "email": 254,
    "email_local": 64,
    "phone_digits": 15,   # E.164
}


def limit(name):
    """The limit in force for a field: the deployment's override if it has one, else the default."""
    from . import settings

    return settings.LIMIT_OVERRIDES.get(name, DEFAULTS[name])
