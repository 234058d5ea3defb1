"""weatherfetch: today's forecast for a city, from the forecast API."""
__version__ = "0.4.2"
