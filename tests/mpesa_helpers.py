"""What the M-Pesa tests share: the app configured against the fake of Daraja
(tests/fakes/mpesa_api.py), startPayment(MPESA), and reading the booking and the ledger."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import httpx
from pydantic import SecretStr
from sqlalchemy import func, select
from starlette.applications import Starlette

from app.wiring import build_payment_gateways, build_worker
from app.worker import Worker
from db.database import Database
from db.models import PaymentOperation
from services.payments import Gateways
from tests.booking_helpers import Place, read
from tests.fakes.mpesa_api import CONSUMER_KEY, CONSUMER_SECRET, PASSKEY, SHORTCODE, FakeMpesa
from tests.helpers import gql, serving

CALLBACK_SECRET = "cb_" + "k3" * 16
START = """
mutation($id: ID!, $phone: String) {
  startPayment(bookingId: $id, provider: MPESA, phoneNumber: $phone) {
    clientSecret redirectUrl payment { id provider status amount { amount currency } }
  }
}
"""
KES = {
    "nightlyPrice": {"amount": "5000", "currency": "KES"},
    "cleaningFee": {"amount": "1000", "currency": "KES"},
}  # two nights: 11,000 + 14% = 12,540 shillings


@dataclass
class Mpesa:
    fake: FakeMpesa
    callback_url: str


@asynccontextmanager
async def mpesa_configured(
    app: Starlette, client: httpx.AsyncClient, **settings_update: object
) -> AsyncIterator[Mpesa]:
    """The fake on a loopback port, the app configured for M-Pesa against it (and with
    ``settings_update``; its gateway built as `roost serve` builds it), and Daraja's posts
    delivered to the app over HTTP."""
    fake = FakeMpesa(deliver_to=client)
    before_services, before_settings = app.state.services, app.state.settings
    async with serving(fake.app()) as url, httpx.AsyncClient(timeout=5) as http:
        settings = before_settings.model_copy(
            update={
                "mpesa_consumer_key": CONSUMER_KEY,
                "mpesa_consumer_secret": SecretStr(CONSUMER_SECRET),
                "mpesa_shortcode": SHORTCODE,
                "mpesa_passkey": SecretStr(PASSKEY),
                "mpesa_api_base": url,
                "mpesa_callback_base": "http://testserver",
                "mpesa_callback_secret": SecretStr(CALLBACK_SECRET),
                **settings_update,
            }
        )
        gateway = build_payment_gateways(settings, http).by_provider["MPESA"]
        gateways = Gateways({**before_services.payment_gateways.by_provider, "MPESA": gateway})
        app.state.settings = settings
        app.state.services = replace(before_services, payment_gateways=gateways)
        try:
            yield Mpesa(fake, settings.mpesa_callback_url)
        finally:
            app.state.settings = before_settings
            app.state.services = replace(
                app.state.services, payment_gateways=before_services.payment_gateways
            )


async def start(
    client: httpx.AsyncClient, place: Place, booking_id: str, phone: str | None = "0712345678"
) -> dict:
    body = await gql(client, START, {"id": booking_id, "phone": phone}, headers=place.as_guest)
    assert "errors" not in body, body
    return body["data"]["startPayment"]


async def state(client: httpx.AsyncClient, place: Place, booking_id: str) -> tuple[str, str]:
    booking = await read(client, booking_id, place.as_guest)
    assert booking is not None
    return booking["status"], booking["payment"]["status"]


async def ledger(database: Database) -> list[tuple[str, str, str | None]]:
    async with database.read_session() as session:
        rows = await session.execute(
            select(
                PaymentOperation.kind, PaymentOperation.status, PaymentOperation.provider_reference
            ).order_by(PaymentOperation.id)
        )
    return [tuple(row) for row in rows]


async def count(database: Database, table: type, *where: object) -> int:
    async with database.read_session() as session:
        return int(await session.scalar(select(func.count()).select_from(table).where(*where)))


def worker_of(app: Starlette) -> Worker:
    return build_worker(app.state.settings, app.state.database, app.state.services)
