"""The service's settings, read from config/app.ini."""
import configparser
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / "config" / "app.ini"


def _list(value):
    return [item.strip() for item in value.split(",") if item.strip()]


def load_config(path=None):
    """The settings as a plain dict; the rest of the service uses only this (see docs/configuration.md)."""
    parser = configparser.ConfigParser()
    with open(path or CONFIG, encoding="utf-8") as f:
        parser.read_file(f)
    server, db = parser["server"], parser["database"]
    features = parser["features"] if parser.has_section("features") else {}
    logging = parser["logging"] if parser.has_section("logging") else {}
    return {
        "host": server.get("host", "127.0.0.1"),
        "port": server.getint("port", 8000),
        "workers": server.getint("workers", 1),
        "debug": server.getboolean("debug", False),
        "tls_cert": server.get("ssl_cert"),
        "tls_key": server.get("ssl_key"),
        "db_url": db["url"],
        "db_pool_size": db.getint("pool_size", 5),
        "db_timeout": db.getfloat("timeout", 5.0),
        "features": _list(features.get("enabled", "")),
        "beta_testers": _list(features.get("beta_testers", "")),
        "log_level": logging.get("level", "INFO").upper(),
        "log_file": logging.get("file"),
    }
