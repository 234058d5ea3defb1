"""The records, as a real service would load them from its database."""

USERS = {
    1: {"name": "Ada Lovelace", "email": "ada@example.org", "team": "analytics", "active": True},
    2: {"name": "Alan Turing", "email": "alan@example.org", "team": "research", "active": True},
    3: {"name": "Grace Hopper", "email": "grace@example.org", "team": "compilers", "active": False},
    4: {"name": "Edsger Dijkstra", "email": "edsger@example.org", "team": "research", "active": True},
}
