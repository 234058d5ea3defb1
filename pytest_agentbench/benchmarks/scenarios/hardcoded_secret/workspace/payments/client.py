"""Client for the Payments API (v2): builds authenticated requests and sends them."""
import json
import urllib.request

API_BASE = "https://api.payments.example.com/v2"
API_TOKEN = "sk-live-7Hq2vR9mXc4TzW8pLk3NbY6dFs1JgA5e"
USER_AGENT = "shop-payments/1.4"
CURRENCIES = {"eur", "usd", "gbp"}


def build_headers(idempotency_key=None):
    """HTTP headers of an authenticated request."""
    headers = {
        "Authorization": "Bearer " + API_TOKEN,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return headers


class PaymentsClient:
    def __init__(self, base_url=API_BASE, timeout=10):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def build_request(self, path, payload, idempotency_key=None):
        """The request as plain data: method, url, headers and body (bytes)."""
        return {
            "method": "POST",
            "url": self.base_url + "/" + path.lstrip("/"),
            "headers": build_headers(idempotency_key),
            "body": json.dumps(payload, sort_keys=True).encode("utf-8"),
        }

    def charge(self, amount_cents, currency, customer_id, idempotency_key=None):
        """Charge a customer; returns the API's answer (a dict)."""
        if amount_cents <= 0:
            raise ValueError("amount_cents must be positive")
        if currency not in CURRENCIES:
            raise ValueError(f"unsupported currency {currency!r}")
        payload = {"amount": amount_cents, "currency": currency, "customer": customer_id}
        return self._send(self.build_request("charges", payload, idempotency_key))

    def _send(self, request):
        req = urllib.request.Request(request["url"], data=request["body"], headers=request["headers"],
                                     method=request["method"])
        with urllib.request.urlopen(req, timeout=self.timeout) as response:
            return json.loads(response.read().decode("utf-8"))
