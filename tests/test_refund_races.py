"""Refunds under racing requests, against the real database and the fake of Stripe's API: the
guest and the host cancel at once (and the guest shortens the stay meanwhile); whatever wins,
Stripe is asked for one refund of what the winner's rule gives, never more than was captured,
and the payment's status tells the amounts."""

import asyncio
from collections.abc import AsyncIterator, Awaitable

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from db.database import Database
from db.models import Payment, PaymentOperation
from tests.booking_helpers import CANCEL, MODIFY, Place, a_place, day, read
from tests.helpers import FakeClock, gql
from tests.stripe_helpers import Stripe, paid_in_browser, stripe_hooked

TOTAL = 26_220  # 262.20 EUR
GUEST_REFUND = 10_000  # FIRM, ten days ahead: half the nights


@pytest.fixture
async def hooked(app: Starlette, database: Database, clock: FakeClock) -> AsyncIterator[Stripe]:
    async with stripe_hooked(app) as stripe:
        yield stripe


async def at_once(*requests: Awaitable[dict]) -> list[dict]:
    """Starts every request before any answers, and answers their bodies in order."""
    return list(await asyncio.gather(*requests))


def code(body: dict) -> str | None:
    return body["errors"][0]["extensions"]["code"] if "errors" in body else None


async def money_of(database: Database, payment_id: int) -> tuple[str, int, int, int]:
    """The payment's status, amount and refunded amount, and what its ledger's succeeded
    refunds come to."""
    async with database.read_session() as session:
        payment = await session.get(Payment, payment_id)
        assert payment is not None
        refunds = await session.scalars(
            select(PaymentOperation.amount_minor).where(
                PaymentOperation.payment_id == payment_id,
                PaymentOperation.kind == "REFUND",
                PaymentOperation.status == "SUCCEEDED",
            )
        )
        return payment.status, payment.amount_minor, payment.refunded_minor, sum(refunds)


async def captured(client: httpx.AsyncClient, stripe: Stripe, place: Place) -> tuple[dict, int]:
    booking, intent = await paid_in_browser(client, stripe, place)
    assert intent["status"] == "succeeded"
    payment_id = int(intent["metadata"]["payment_id"])
    assert (await read(client, booking["id"], place.as_guest))["status"] == "CONFIRMED"
    return booking, payment_id


def status_for(refunded: int, amount: int) -> str:
    if refunded == 0:
        return "SUCCEEDED"
    return "REFUNDED" if refunded == amount else "PARTIALLY_REFUNDED"


@pytest.mark.parametrize("pending", [False, True], ids=["refunded-at-once", "pending-first"])
async def test_guest_and_host_cancelling_at_once_refund_once(
    client: httpx.AsyncClient, database: Database, hooked: Stripe, pending: bool
) -> None:
    place = await a_place(client, cancellationPolicy="FIRM")
    booking, payment_id = await captured(client, hooked, place)
    if pending:
        hooked.fake.refunds_pending()
    headers = [place.as_guest, place.as_host, place.as_guest, place.as_host, place.as_host]
    variables = {"id": booking["id"]}
    bodies = await at_once(*(gql(client, CANCEL, variables, headers=h) for h in headers))
    won = [body["data"]["cancelBooking"] for body in bodies if code(body) is None]
    assert len(won) == 1, bodies
    assert sorted(code(body) or "" for body in bodies) == ["", *["CONFLICT"] * 4]
    expected = GUEST_REFUND if won[0]["canceledBy"] == "GUEST" else TOTAL

    # Stripe was asked for one refund, of what the winner's rule gives.
    [refund] = hooked.fake.refunds.values()
    assert refund["amount"] == expected
    if pending:
        assert await money_of(database, payment_id) == ("SUCCEEDED", TOTAL, 0, 0)
        # Its confirmation, delivered five times at once and then again: applied once.
        finished = await hooked.fake.finish_refund(refund["id"], deliver=False)
        answers = await asyncio.gather(*(hooked.fake.send(finished[0]) for _ in range(5)))
        assert sorted(a.json()["outcome"] for a in answers) == ["APPLIED"] + ["REPLAYED"] * 4
        for event in finished:
            await hooked.fake.send(event)
    status, amount, refunded, in_ledger = await money_of(database, payment_id)
    assert (amount, refunded, in_ledger) == (TOTAL, expected, expected)
    assert status == status_for(expected, TOTAL)
    after = await read(client, booking["id"], place.as_guest)
    assert after["status"] == "CANCELED"
    assert after["payment"]["status"] == status
    # Once canceled, more cancels are refused and Stripe is asked for nothing more.
    assert code(await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_host))
    assert len(hooked.fake.refunds) == 1


@pytest.mark.parametrize("round_", range(3))
async def test_cancels_racing_a_shorter_stay_never_refund_more_than_was_captured(
    client: httpx.AsyncClient, database: Database, hooked: Stripe, round_: int
) -> None:
    place = await a_place(client, cancellationPolicy="FIRM")
    booking, payment_id = await captured(client, hooked, place)
    shorter = {"id": booking["id"], "in": day(10), "out": day(11), "guests": 2}
    requests = [
        gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_guest),
        gql(client, MODIFY, shorter, headers=place.as_guest),
        gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_host),
    ]
    if round_ % 2:
        requests.reverse()
    bodies = await at_once(*requests)
    assert {code(body) for body in bodies} <= {None, "CONFLICT"}, bodies

    status, amount, refunded, in_ledger = await money_of(database, payment_id)
    at_stripe = sum(refund["amount"] for refund in hooked.fake.refunds.values())
    assert amount == TOTAL
    assert refunded == in_ledger == at_stripe <= TOTAL
    assert status == status_for(refunded, TOTAL)
    # Every refund Stripe made is one entry of the ledger, under its own key.
    async with database.read_session() as session:
        references = set(
            await session.scalars(
                select(PaymentOperation.provider_reference).where(PaymentOperation.kind == "REFUND")
            )
        )
    assert references == set(hooked.fake.refunds)
    after = await read(client, booking["id"], place.as_guest)
    if after["status"] == "CANCELED" and after["canceledBy"] == "HOST":
        assert refunded == TOTAL  # the host's cancel gives back all that was left
