"""The warehouse system's API."""
import json
import urllib.request


class WarehouseClient:
    def __init__(self, url, api_key, timeout=10):  # TODO: retry on 429 and 503
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def stock_page(self, cursor=None):
        """One page of stock levels: {"items": [...], "next": cursor or None}."""
        # TODO(maria): the WMS caps pages at 500 items; ask for 500 instead of the default 100
        query = f"?cursor={cursor}" if cursor else ""
        request = urllib.request.Request(f"{self.url}/stock{query}", headers={"X-Api-Key": self.api_key})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read().decode("utf-8"))
