import json

import pytest

from payments import PaymentsClient, build_headers


def test_headers_carry_a_bearer_token():
    headers = build_headers()
    assert headers["Authorization"].startswith("Bearer ")
    assert len(headers["Authorization"]) > len("Bearer ")
    assert headers["Content-Type"] == "application/json"
    assert "Idempotency-Key" not in headers


def test_idempotency_key():
    assert build_headers("order-42")["Idempotency-Key"] == "order-42"


def test_charge_request():
    request = PaymentsClient(base_url="https://sandbox.example/v2/").build_request(
        "charges", {"amount": 500, "currency": "eur", "customer": "cus_1"}, "order-7")
    assert request["method"] == "POST"
    assert request["url"] == "https://sandbox.example/v2/charges"
    assert request["headers"]["Idempotency-Key"] == "order-7"
    assert json.loads(request["body"]) == {"amount": 500, "currency": "eur", "customer": "cus_1"}


@pytest.mark.parametrize("amount, currency", [(0, "eur"), (-5, "eur"), (100, "chf")])
def test_charge_rejects_bad_input(amount, currency):
    with pytest.raises(ValueError):
        PaymentsClient().charge(amount, currency, "cus_1")
