from dataclasses import dataclass, field


@dataclass
class Account:
    username: str
    email: str
    display_name: str
    password_hash: str
    phone: str | None = None
    roles: list[str] = field(default_factory=lambda: ["customer"])
