"""PayPal through HTTP: startPayment(PAYPAL) answers the approval URL, the buyer approves on a
local fake of PayPal's API (tests/fakes/paypal_api.py), and the worker, asking PayPal about
the waiting payment, confirms it as it does Stripe's."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from app.wiring import build_worker
from app.worker import Worker
from db.database import Database
from db.models import PaymentOperation
from gateways.paypal import PayPalGateway
from services.payments import Gateways
from tests.booking_helpers import ACCEPT, DECLINE, START_PAYMENT, Place, a_place, booked, read
from tests.fakes.paypal_api import CLIENT_ID, CLIENT_SECRET, FakePayPal
from tests.helpers import FakeClock, gql, serving

PROVIDERS = "query($id: ID!) { booking(id: $id) { paymentProviders } }"


@dataclass
class PayPal:
    fake: FakePayPal

    def order(self, started: dict) -> dict:
        return self.fake.orders[started["redirectUrl"].rsplit("token=", 1)[1]]


@pytest.fixture
async def paypal(app: Starlette) -> AsyncIterator[PayPal]:
    """The fake on a loopback port, and the app's PAYPAL gateway pointed at it."""
    fake = FakePayPal()
    before = app.state.services
    async with serving(fake.app()) as url, httpx.AsyncClient(timeout=5) as http:
        fake.base_url = url
        gateway = PayPalGateway(
            http, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, api_base=url
        )
        gateways = Gateways({**before.payment_gateways.by_provider, "PAYPAL": gateway})
        app.state.services = replace(before, payment_gateways=gateways)
        try:
            yield PayPal(fake)
        finally:
            app.state.services = replace(
                app.state.services, payment_gateways=before.payment_gateways
            )


def worker_of(app: Starlette) -> Worker:
    return build_worker(app.state.settings, app.state.database, app.state.services)


def priced_in(currency: str, nightly: str, cleaning: str) -> dict[str, object]:
    return {
        "nightlyPrice": {"amount": nightly, "currency": currency},
        "cleaningFee": {"amount": cleaning, "currency": currency},
    }


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


async def ledger(database: Database) -> list[tuple[str, str]]:
    async with database.read_session() as session:
        rows = await session.execute(
            select(PaymentOperation.kind, PaymentOperation.status).order_by(PaymentOperation.id)
        )
    return [tuple(row) for row in rows]


async def test_an_instant_booking_paid_with_paypal_is_confirmed_by_the_worker(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, paypal: PayPal
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)  # 262.20 EUR
    listed = await gql(client, PROVIDERS, {"id": booking["id"]}, headers=place.as_guest)
    assert "PAYPAL" in listed["data"]["booking"]["paymentProviders"]
    started = await start(client, place, booking["id"])
    assert started["payment"]["provider"] == "PAYPAL"
    assert started["clientSecret"] is None
    order = paypal.order(started)
    assert started["redirectUrl"] == f"{paypal.fake.base_url}/checkoutnow?token={order['id']}"
    assert order["intent"] == "CAPTURE"
    assert order["status"] == "PAYER_ACTION_REQUIRED"
    unit = order["purchase_units"][0]
    assert unit["amount"] == {"currency_code": "EUR", "value": "262.20"}
    payment_number = int(unit["invoice_id"].removeprefix("roost-payment-"))
    assert unit["custom_id"].startswith("roost-booking-")
    # Asked again, the same order: PayPal answers the same request id the same.
    assert await start(client, place, booking["id"]) == started
    assert len(paypal.fake.orders) == 1
    assert payment_number > 0

    clock.advance(minutes=2)
    await worker_of(app).run_once()  # not approved yet: still waiting
    assert (await read(client, booking["id"], place.as_guest))["status"] == "PENDING"

    await approve(started)
    clock.advance(minutes=2)
    await worker_of(app).run_once()
    confirmed = await read(client, booking["id"], place.as_guest)
    assert (confirmed["status"], confirmed["payment"]["status"]) == ("CONFIRMED", "SUCCEEDED")
    assert [kind for kind, _, _, _ in paypal.fake.moves] == ["capture"]
    assert paypal.fake.moves[0][2:] == (Decimal("262.20"), "EUR")
    assert order["status"] == "COMPLETED"
    assert await ledger(database) == [("AUTHORIZE", "SUCCEEDED"), ("CAPTURE", "SUCCEEDED")]

    clock.advance(minutes=10)
    await worker_of(app).run_once()  # confirmed: nobody asks, nothing is captured again
    assert len(paypal.fake.moves) == 1


async def test_a_request_approved_with_paypal_is_held_and_the_host_accepts(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, paypal: PayPal
) -> None:
    place = await a_place(client, instantBook=False)
    booking = await booked(client, place, 10, 12)
    started = await start(client, place, booking["id"])
    assert paypal.order(started)["intent"] == "AUTHORIZE"
    await approve(started)
    clock.advance(minutes=2)
    await worker_of(app).run_once()
    held = await read(client, booking["id"], place.as_host)
    assert (held["status"], held["payment"]["status"]) == ("PENDING", "AUTHORIZED")
    # Really held at PayPal: the order was authorized when the worker found it approved.
    assert [kind for kind, _, _, _ in paypal.fake.moves] == ["authorize"]
    clock.advance(minutes=2)
    await worker_of(app).run_once()  # asked again while the host thinks: nothing more moves
    assert len(paypal.fake.moves) == 1

    body = await gql(client, ACCEPT, {"id": booking["id"]}, headers=place.as_host)
    accepted = body["data"]["acceptBooking"]
    assert (accepted["status"], accepted["payment"]["status"]) == ("CONFIRMED", "SUCCEEDED")
    assert [kind for kind, _, _, _ in paypal.fake.moves] == ["authorize", "capture"]
    assert paypal.fake.moves[1][2:] == (Decimal("262.20"), "EUR")


async def test_a_request_approved_with_paypal_and_declined_voids_the_hold(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, paypal: PayPal
) -> None:
    place = await a_place(client, instantBook=False)
    booking = await booked(client, place, 10, 12)
    await approve(await start(client, place, booking["id"]))
    clock.advance(minutes=2)
    await worker_of(app).run_once()
    body = await gql(client, DECLINE, {"id": booking["id"]}, headers=place.as_host)
    declined = body["data"]["declineBooking"]
    assert (declined["status"], declined["payment"]["status"]) == ("CANCELED", "CANCELED")
    assert [kind for kind, _, _, _ in paypal.fake.moves] == ["authorize", "void"]
    [authorization] = paypal.fake.authorizations.values()
    assert authorization["status"] == "VOIDED"


async def test_paypal_is_not_offered_for_dinars(
    client: httpx.AsyncClient, clock: FakeClock, paypal: PayPal
) -> None:
    place = await a_place(client, **priced_in("KWD", "30.000", "5.000"))
    booking = await booked(client, place, 10, 12)
    listed = await gql(client, PROVIDERS, {"id": booking["id"]}, headers=place.as_guest)
    providers = listed["data"]["booking"]["paymentProviders"]
    assert "PAYPAL" not in providers
    assert "TEST" in providers
    body = await gql(
        client, START_PAYMENT, {"id": booking["id"], "provider": "PAYPAL"}, headers=place.as_guest
    )
    [error] = body["errors"]
    problem = "PAYPAL does not take payments in KWD; the booking's paymentProviders do"
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "fields": {"provider": problem}}
    assert paypal.fake.orders == {}
    assert (await read(client, booking["id"], place.as_guest))["payment"] is None


async def test_yen_are_charged_exactly_in_whole_yen(
    app: Starlette, client: httpx.AsyncClient, clock: FakeClock, paypal: PayPal
) -> None:
    place = await a_place(client, **priced_in("JPY", "12000", "3000"))
    booking = await booked(client, place, 10, 12)  # 27,000 + 14% = 30,780 yen
    listed = await gql(client, PROVIDERS, {"id": booking["id"]}, headers=place.as_guest)
    assert "PAYPAL" in listed["data"]["booking"]["paymentProviders"]
    started = await start(client, place, booking["id"])
    assert started["payment"]["amount"] == {"amount": "30780", "currency": "JPY"}
    unit = paypal.order(started)["purchase_units"][0]
    assert unit["amount"] == {"currency_code": "JPY", "value": "30780"}
    await approve(started)
    clock.advance(minutes=2)
    await worker_of(app).run_once()
    confirmed = await read(client, booking["id"], place.as_guest)
    assert (confirmed["status"], confirmed["payment"]["status"]) == ("CONFIRMED", "SUCCEEDED")
    assert [move[2:] for move in paypal.fake.moves] == [(Decimal("30780"), "JPY")]


async def test_a_declined_paypal_instrument_fails_the_payment_and_the_guest_may_pay_anew(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, paypal: PayPal
) -> None:
    place = await a_place(client, instantBook=False)
    booking = await booked(client, place, 10, 12)
    started = await start(client, place, booking["id"])
    paypal.fake.approve(paypal.order(started)["id"], instrument_declined=True)
    clock.advance(minutes=2)
    await worker_of(app).run_once()
    failed = await read(client, booking["id"], place.as_guest)
    assert (failed["status"], failed["payment"]["status"]) == ("PENDING", "FAILED")
    assert paypal.fake.moves == []
    again = await start(client, place, booking["id"])
    assert again["payment"]["id"] != started["payment"]["id"]
    assert len(paypal.fake.orders) == 2
