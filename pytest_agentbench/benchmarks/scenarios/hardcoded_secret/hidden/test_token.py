"""Hidden checks: the token comes from the mapping given to load_token, headers and clients are built from it,
a missing token is a clear RuntimeError, and the rest of the client works as before."""
import json

import pytest

from payments.client import PaymentsClient, build_headers, load_token

VAR = "PAYMENTS_API_TOKEN"


def test_load_token_reads_the_given_mapping():
    assert load_token({VAR: "tok-test-123"}) == "tok-test-123"
    assert load_token({VAR: "another-token", "OTHER": "x"}) == "another-token"


def test_missing_token_is_a_clear_error():
    with pytest.raises(RuntimeError) as info:
        load_token({})
    assert VAR in str(info.value)


def test_empty_token_is_a_clear_error():
    with pytest.raises(RuntimeError) as info:
        load_token({VAR: ""})
    assert VAR in str(info.value)


def test_headers_from_the_token():
    assert build_headers("tok-abc") == {"Authorization": "Bearer tok-abc", "Content-Type": "application/json",
                                        "User-Agent": "shop-payments/1.4"}
    assert build_headers("tok-abc", "order-9")["Idempotency-Key"] == "order-9"


def test_client_uses_its_token():
    request = PaymentsClient("tok-xyz").build_request("charges", {"amount": 1}, "k-1")
    assert request["headers"]["Authorization"] == "Bearer tok-xyz"
    assert request["headers"]["Idempotency-Key"] == "k-1"
    assert request["url"] == "https://api.payments.example.com/v2/charges"
    assert request["method"] == "POST"
    assert json.loads(request["body"]) == {"amount": 1}


def test_client_keeps_its_options():
    request = PaymentsClient("t", base_url="https://sandbox.example/v2/", timeout=3).build_request("refunds", {})
    assert request["url"] == "https://sandbox.example/v2/refunds"
    assert PaymentsClient("t", timeout=3).timeout == 3


def test_client_from_env():
    client = PaymentsClient.from_env({VAR: "tok-env"})
    assert client.build_request("charges", {})["headers"]["Authorization"] == "Bearer tok-env"


def test_client_from_env_without_a_token():
    with pytest.raises(RuntimeError):
        PaymentsClient.from_env({"HOME": "/root"})


def test_charge_still_validates():
    for amount, currency in [(0, "eur"), (-5, "usd"), (100, "chf")]:
        with pytest.raises(ValueError):
            PaymentsClient("t").charge(amount, currency, "cus_1")
