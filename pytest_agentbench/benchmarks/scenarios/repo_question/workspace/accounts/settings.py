"""Deployment settings of the accounts service."""

# Our outbound mail relay refuses local parts longer than 40 characters, so sign-up does too; display names are
# cut to what the invoice template can print.
LIMIT_OVERRIDES = {
    "email_local": 40,
    "display_name": 48,
}

PASSWORD_MIN_LENGTH = 12
BLOCKED_DOMAINS = {"mailinator.com", "example.invalid"}
