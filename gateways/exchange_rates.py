"""Exchange rates from the European Central Bank's daily reference rates (XML over HTTP).

The ECB publishes, each working day, how many units of about 30 currencies one euro buys.
Roost keeps rates as US dollars per unit, so the feed is turned around through its USD rate.
"""

from decimal import Decimal, InvalidOperation
from xml.etree import ElementTree

import httpx

ECB_DAILY_URL = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"


class RatesUnavailable(Exception):
    """The provider could not be reached or answered something unreadable."""


def usd_per_unit_from_ecb(xml: bytes) -> dict[str, Decimal]:
    """US dollars per unit of each currency in an ECB daily feed (EUR included)."""
    try:
        root = ElementTree.fromstring(xml)  # noqa: S314 (a fixed provider, parsed without DTDs)
    except ElementTree.ParseError as error:
        raise RatesUnavailable(f"unreadable rates feed: {error}") from None
    per_euro: dict[str, Decimal] = {"EUR": Decimal(1)}
    for element in root.iter():
        currency, rate = element.get("currency"), element.get("rate")
        if currency and rate:
            try:
                value = Decimal(rate)
            except InvalidOperation:
                continue
            if value > 0 and len(currency) == 3 and currency.isalpha():
                per_euro[currency.upper()] = value
    usd_per_euro = per_euro.get("USD")
    if usd_per_euro is None:
        raise RatesUnavailable("the rates feed has no USD rate")
    return {
        currency: (usd_per_euro / units).quantize(Decimal("0.0000000001"))
        for currency, units in per_euro.items()
    }


class EcbRates:
    def __init__(self, http: httpx.AsyncClient, url: str = ECB_DAILY_URL) -> None:
        self.http = http
        self.url = url

    async def usd_per_unit(self) -> dict[str, Decimal]:
        try:
            response = await self.http.get(self.url)
        except httpx.HTTPError as error:
            raise RatesUnavailable(f"could not reach the rates provider: {error}") from None
        if response.status_code != 200:
            raise RatesUnavailable(f"the rates provider answered {response.status_code}")
        return usd_per_unit_from_ecb(response.content)
