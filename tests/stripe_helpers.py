"""Stripe in tests: the fake of its API on a loopback port with the app's gateway pointed at it,
and the steps of paying with it."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import httpx
from pydantic import SecretStr
from sqlalchemy import select
from starlette.applications import Starlette

from db.database import Database
from db.models import PaymentOperation
from gateways.stripe import StripeGateway
from services.payments import Gateways
from tests.booking_helpers import START_PAYMENT, Place, booked
from tests.fakes.stripe_api import SECRET_KEY, FakeStripe, WebhookEndpoint, confirm_in_browser
from tests.helpers import gql, serving


@dataclass
class Stripe:
    fake: FakeStripe
    url: str

    def intent(self, client_secret: str) -> dict:
        return self.fake.intents[client_secret.split("_secret_")[0]]


@asynccontextmanager
async def stripe_serving(app: Starlette) -> AsyncIterator[Stripe]:
    """The fake on a loopback port, and the app's STRIPE gateway pointed at it."""
    fake = FakeStripe()
    before = app.state.services
    async with serving(fake.app()) as url:
        gateway = StripeGateway(
            api_key=SECRET_KEY, api_base=url, timeout_seconds=2, max_network_retries=0
        )
        gateways = Gateways({**before.payment_gateways.by_provider, "STRIPE": gateway})
        app.state.services = replace(before, payment_gateways=gateways)
        try:
            yield Stripe(fake, url)
        finally:
            app.state.services = replace(
                app.state.services, payment_gateways=before.payment_gateways
            )


async def start(client: httpx.AsyncClient, place: Place, booking_id: str) -> dict:
    body = await gql(
        client, START_PAYMENT, {"id": booking_id, "provider": "STRIPE"}, headers=place.as_guest
    )
    assert "errors" not in body, body
    return body["data"]["startPayment"]


async def ledger(database: Database) -> list[tuple[str, str, str | None]]:
    async with database.read_session() as session:
        rows = await session.execute(
            select(
                PaymentOperation.kind, PaymentOperation.status, PaymentOperation.provider_reference
            ).order_by(PaymentOperation.id)
        )
    return [tuple(row) for row in rows]


async def paid_in_browser(
    client: httpx.AsyncClient, stripe: Stripe, place: Place, card: str = "pm_card_visa"
) -> tuple[dict, dict]:
    """A booking 10 to 12 days ahead, paid with Stripe on the guest's page: the booking, the
    intent."""
    booking = await booked(client, place, 10, 12)
    started = await start(client, place, booking["id"])
    await confirm_in_browser(stripe.url, started["clientSecret"], card)
    return booking, stripe.intent(started["clientSecret"])


WEBHOOK_SECRET = "whsec_roost_refunds"


@asynccontextmanager
async def stripe_hooked(app: Starlette) -> AsyncIterator[Stripe]:
    """The fake, with the app's webhook secret set and the fake posting its events, signed, to
    the app's POST /webhooks/stripe at the app's time (before the call that caused them
    answers)."""
    before = app.state.settings
    app.state.settings = before.model_copy(
        update={"stripe_webhook_secret": [SecretStr(WEBHOOK_SECRET)]}
    )
    try:
        async with stripe_serving(app) as stripe:
            transport = httpx.ASGITransport(app=app)
            stripe.fake.endpoint = WebhookEndpoint(
                "http://testserver/webhooks/stripe", WEBHOOK_SECRET, transport
            )
            stripe.fake.clock = lambda: app.state.services.clock().timestamp()
            yield stripe
    finally:
        app.state.settings = before
