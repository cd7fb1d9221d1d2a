"""PayPal in tests: the fake of its API on a loopback port, the app's PAYPAL gateway pointed at
it, and (``paypal_hooked``) the fake sending its signed webhooks to the app."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import httpx
from starlette.applications import Starlette

from gateways.paypal import PayPalGateway
from services.payments import Gateways
from tests.booking_helpers import START_PAYMENT, Place
from tests.fakes.paypal_api import CLIENT_ID, CLIENT_SECRET, FakePayPal, PayPalEndpoint
from tests.helpers import gql, serving

WEBHOOK_ID = "8PT597110X687430LKGECATA"


@dataclass
class PayPal:
    fake: FakePayPal

    def order(self, started: dict) -> dict:
        return self.fake.orders[started["redirectUrl"].rsplit("token=", 1)[1]]


@asynccontextmanager
async def paypal_hooked(app: Starlette) -> AsyncIterator[PayPal]:
    """The fake on a loopback port, the app's PAYPAL gateway pointed at it and its webhook id
    set, and the fake posting its events to the app's POST /webhooks/paypal."""
    fake = FakePayPal()
    services, settings = app.state.services, app.state.settings
    async with serving(fake.app()) as url, httpx.AsyncClient(timeout=5) as http:
        fake.base_url = url
        fake.endpoint = PayPalEndpoint(
            "http://testserver/webhooks/paypal", WEBHOOK_ID, httpx.ASGITransport(app=app)
        )
        gateway = PayPalGateway(
            http, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, api_base=url
        )
        gateways = Gateways({**services.payment_gateways.by_provider, "PAYPAL": gateway})
        app.state.services = replace(services, payment_gateways=gateways)
        app.state.settings = settings.model_copy(update={"paypal_webhook_id": WEBHOOK_ID})
        try:
            yield PayPal(fake)
        finally:
            app.state.services = replace(
                app.state.services, payment_gateways=services.payment_gateways
            )
            app.state.settings = settings


async def start(client: httpx.AsyncClient, place: Place, booking_id: str) -> dict:
    body = await gql(
        client, START_PAYMENT, {"id": booking_id, "provider": "PAYPAL"}, headers=place.as_guest
    )
    assert "errors" not in body, body
    return body["data"]["startPayment"]


async def approve(started: dict) -> None:
    """The buyer follows the approval URL and approves at PayPal."""
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(started["redirectUrl"])).status_code == 200
