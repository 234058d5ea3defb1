import click
import requests
from dateutil import parser as dateparser
from jinja2 import Template

API = "https://api.forecast.example/v1/today"
REPORT = Template("{{ city }}, {{ when.strftime('%a %d %b') }}: {{ summary }}, {{ high }}/{{ low }} C")


@click.command()
@click.option("--city", required=True, help="city name, e.g. Oslo")
def main(city):
    reply = requests.get(API, params={"city": city}, timeout=10)
    reply.raise_for_status()
    data = reply.json()
    click.echo(REPORT.render(city=city, when=dateparser.isoparse(data["date"]), summary=data["summary"],
                             high=data["high"], low=data["low"]))
