from shop.app import describe, feature_enabled
from shop.settings import load_config


def test_server():
    s = load_config()
    assert (s["host"], s["port"], s["workers"], s["debug"]) == ("0.0.0.0", 8080, 4, True)


def test_database():
    s = load_config()
    assert (s["db_url"], s["db_pool_size"], s["db_timeout"]) == ("postgresql://shop@db.internal:5432/shop", 10, 2.5)


def test_features():
    assert feature_enabled("search")
    assert not feature_enabled("wishlist")
    assert feature_enabled("wishlist", user="alice@example.com")
    assert not feature_enabled("wishlist", user="carol@example.com")


def test_describe():
    assert describe() == ("shop on https://0.0.0.0:8080 (4 workers, debug), database pool 10, "
                          "features: search, recommendations, gift-cards")
