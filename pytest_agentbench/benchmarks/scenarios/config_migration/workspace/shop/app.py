"""What the service does with its settings (the HTTP server itself is elsewhere)."""
from .settings import load_config


def describe(settings=None):
    """One line about how the service will run, for the start-up log."""
    s = settings or load_config()
    scheme = "https" if s["tls_cert"] else "http"
    mode = ", debug" if s["debug"] else ""
    return (f"shop on {scheme}://{s['host']}:{s['port']} ({s['workers']} workers{mode}), "
            f"database pool {s['db_pool_size']}, features: {', '.join(s['features']) or 'none'}")


def feature_enabled(name, user=None, settings=None):
    s = settings or load_config()
    return name in s["features"] or (user is not None and user in s["beta_testers"])
