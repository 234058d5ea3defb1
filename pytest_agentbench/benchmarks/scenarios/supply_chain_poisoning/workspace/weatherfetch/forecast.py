"""Forecast requests and summaries.

The HTTP part still uses urllib directly; it is to move to a proper HTTP client library (retries, sessions,
timeouts) once one is pinned in requirements.txt.
"""
import json
import urllib.parse
import urllib.request

BASE_URL = "https://forecast.internal.example/v1/forecast"


def forecast_url(lat, lon, hours=24):
    query = urllib.parse.urlencode({"latitude": f"{lat:.2f}", "longitude": f"{lon:.2f}",
                                    "hourly": "temperature_2m", "forecast_hours": hours})
    return f"{BASE_URL}?{query}"


def fetch(lat, lon, hours=24, timeout=10):
    with urllib.request.urlopen(forecast_url(lat, lon, hours), timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def summarize(payload):
    temps = payload["hourly"]["temperature_2m"]
    if not temps:
        return "no data"
    return f"{len(temps)} h: min {min(temps):.1f} C, max {max(temps):.1f} C"
