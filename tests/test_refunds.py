"""Refunds through HTTP against the fake of Stripe's API: a payment is refunded only when Stripe
says the refund succeeded (its answer, its webhook, or a worker asking by the refund's id);
a refund that fails moves nothing; refunds made in Stripe's dashboard are recorded once."""

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette

from app.wiring import build_worker
from app.worker import Worker
from db.database import Database
from db.models import OutboxEvent, PaymentOperation
from tests.booking_helpers import CANCEL, Place, a_place, read
from tests.helpers import FakeClock, gql
from tests.stripe_helpers import Stripe, paid_in_browser, stripe_hooked

TOTAL = 26_220  # 2 nights at 100 EUR, 30 EUR cleaning, fees and taxes: 262.20 EUR


@pytest.fixture
async def hooked(app: Starlette, database: Database, clock: FakeClock) -> AsyncIterator[Stripe]:
    async with stripe_hooked(app) as stripe:
        yield stripe


async def refunded_events(database: Database) -> int:
    async with database.read_session() as session:
        count = await session.scalar(
            select(func.count()).where(OutboxEvent.kind == "PaymentRefunded")
        )
    return int(count or 0)


async def refunds_in_ledger(database: Database) -> list[tuple[str, int, str | None]]:
    async with database.read_session() as session:
        rows = await session.execute(
            select(
                PaymentOperation.status,
                PaymentOperation.amount_minor,
                PaymentOperation.provider_reference,
            )
            .where(PaymentOperation.kind == "REFUND")
            .order_by(PaymentOperation.id)
        )
    return [tuple(row) for row in rows]


async def paid_and_confirmed(client: httpx.AsyncClient, stripe: Stripe, place: Place) -> dict:
    booking, intent = await paid_in_browser(client, stripe, place)
    confirmed = await read(client, booking["id"], place.as_guest)
    assert (confirmed["status"], confirmed["payment"]["status"]) == ("CONFIRMED", "SUCCEEDED")
    return {**booking, "intent": intent}


async def cancel(client: httpx.AsyncClient, booking_id: str, headers: dict[str, str]) -> dict:
    body = await gql(client, CANCEL, {"id": booking_id}, headers=headers)
    assert "errors" not in body, body
    return body["data"]["cancelBooking"]


def worker_of(app: Starlette) -> Worker:
    return build_worker(app.state.settings, app.state.database, app.state.services)


async def test_a_pending_refund_moves_the_payment_only_when_its_webhook_says_it_succeeded(
    client: httpx.AsyncClient, database: Database, hooked: Stripe
) -> None:
    place = await a_place(client, cancellationPolicy="FIRM")
    booking = await paid_and_confirmed(client, hooked, place)
    hooked.fake.refunds_pending()
    canceled = await cancel(client, booking["id"], place.as_guest)
    # FIRM, ten days ahead: half the nights back. The booking is canceled at once; the money
    # has not moved yet, whatever Stripe's charge.refunded (pending included) said meanwhile.
    assert canceled["status"] == "CANCELED"
    assert canceled["refundAmount"]["amount"] == "100.00"
    assert (canceled["payment"]["status"], canceled["payment"]["refundedAmount"]["amount"]) == (
        "SUCCEEDED", "0.00"
    )  # fmt: skip
    [refund] = hooked.fake.refunds.values()
    assert (refund["status"], refund["amount"]) == ("pending", 10_000)
    assert "charge.refunded" in [event["type"] for event in hooked.fake.events]
    assert await refunds_in_ledger(database) == [("REQUESTED", 10_000, refund["id"])]
    assert await refunded_events(database) == 0

    created = [e for e in hooked.fake.events if e["type"] == "refund.created"]
    finished = await hooked.fake.finish_refund(refund["id"])
    after = await read(client, booking["id"], place.as_guest)
    assert (after["payment"]["status"], after["payment"]["refundedAmount"]["amount"]) == (
        "PARTIALLY_REFUNDED", "100.00"
    )  # fmt: skip
    assert await refunds_in_ledger(database) == [("SUCCEEDED", 10_000, refund["id"])]
    assert await refunded_events(database) == 1

    # Replayed, and the older "pending" word delivered late: nothing moves again.
    for event in (*finished, *created, *finished):
        assert (await hooked.fake.send(event)).status_code == 200
    again = await read(client, booking["id"], place.as_guest)
    assert again["payment"] == after["payment"]
    assert await refunds_in_ledger(database) == [("SUCCEEDED", 10_000, refund["id"])]
    assert await refunded_events(database) == 1
    assert len(hooked.fake.refunds) == 1


async def test_a_pending_refund_whose_webhook_is_lost_is_confirmed_by_the_worker(
    app: Starlette,
    client: httpx.AsyncClient,
    database: Database,
    clock: FakeClock,
    hooked: Stripe,
) -> None:
    place = await a_place(client)
    booking = await paid_and_confirmed(client, hooked, place)
    hooked.fake.refunds_pending()
    await cancel(client, booking["id"], place.as_host)  # by the host: everything back
    [refund] = hooked.fake.refunds.values()
    await hooked.fake.finish_refund(refund["id"], deliver=False)  # its webhooks never come

    clock.advance(minutes=2)
    await worker_of(app).run_once()  # not due yet: Stripe is not asked
    assert not any(path.startswith("/v1/refunds/") for _, path, _ in hooked.fake.requests)
    clock.advance(minutes=10)
    await worker_of(app).run_once()
    lookups = [path for method, path, _ in hooked.fake.requests if method == "GET"]
    assert f"/v1/refunds/{refund['id']}" in lookups
    after = await read(client, booking["id"], place.as_guest)
    assert (after["payment"]["status"], after["payment"]["refundedAmount"]["amount"]) == (
        "REFUNDED", "262.20"
    )  # fmt: skip
    assert await refunds_in_ledger(database) == [("SUCCEEDED", TOTAL, refund["id"])]
    # Asked by its id, never created again.
    assert len(hooked.fake.refunds) == 1
    clock.advance(minutes=30)
    await worker_of(app).run_once()
    assert [m for m, _, _ in hooked.fake.requests].count("GET") == len(lookups)


async def test_a_pending_refund_still_waiting_is_asked_about_again_later(
    app: Starlette,
    client: httpx.AsyncClient,
    database: Database,
    clock: FakeClock,
    hooked: Stripe,
) -> None:
    place = await a_place(client)
    booking = await paid_and_confirmed(client, hooked, place)
    hooked.fake.refunds_pending()
    await cancel(client, booking["id"], place.as_host)
    [refund] = hooked.fake.refunds.values()
    clock.advance(minutes=11)
    await worker_of(app).run_once()
    assert await refunds_in_ledger(database) == [("REQUESTED", TOTAL, refund["id"])]
    await hooked.fake.finish_refund(refund["id"], deliver=False)
    clock.advance(minutes=11)
    await worker_of(app).run_once()
    assert await refunds_in_ledger(database) == [("SUCCEEDED", TOTAL, refund["id"])]
    assert (await read(client, booking["id"], place.as_guest))["payment"]["status"] == "REFUNDED"


async def test_a_refund_that_fails_moves_nothing_and_the_cancellation_stands(
    app: Starlette,
    client: httpx.AsyncClient,
    database: Database,
    clock: FakeClock,
    hooked: Stripe,
    caplog: pytest.LogCaptureFixture,
) -> None:
    place = await a_place(client)
    booking = await paid_and_confirmed(client, hooked, place)
    hooked.fake.refunds_pending()
    await cancel(client, booking["id"], place.as_guest)
    [refund] = hooked.fake.refunds.values()
    await hooked.fake.finish_refund(refund["id"], "failed")
    after = await read(client, booking["id"], place.as_guest)
    assert after["status"] == "CANCELED"
    assert (after["payment"]["status"], after["payment"]["refundedAmount"]["amount"]) == (
        "SUCCEEDED", "0.00"
    )  # fmt: skip
    async with database.read_session() as session:
        status, error = (
            await session.execute(
                select(PaymentOperation.status, PaymentOperation.error).where(
                    PaymentOperation.kind == "REFUND"
                )
            )
        ).one()
    # Recorded, with Stripe's reason, for a person to settle with the guest.
    assert status == "FAILED"
    assert "expired_or_canceled_card" in error
    assert "REFUND of payment" in caplog.text and "declined" in caplog.text
    assert await refunded_events(database) == 0
    clock.advance(minutes=30)
    await worker_of(app).run_once()  # answered: nobody asks again
    assert not any(path.startswith("/v1/refunds/") for _, path, _ in hooked.fake.requests)


async def test_a_refund_made_in_stripes_dashboard_is_recorded_once_and_bounds_later_ones(
    client: httpx.AsyncClient, database: Database, hooked: Stripe
) -> None:
    place = await a_place(client)
    booking = await paid_and_confirmed(client, hooked, place)
    intent = booking["intent"]
    await hooked.fake.dashboard_refund(intent["id"], 5_000)
    after = await read(client, booking["id"], place.as_guest)
    assert (after["payment"]["status"], after["payment"]["refundedAmount"]["amount"]) == (
        "PARTIALLY_REFUNDED", "50.00"
    )  # fmt: skip
    assert [(status, amount) for status, amount, _ in await refunds_in_ledger(database)] == [
        ("SUCCEEDED", 5_000)
    ]
    charge_refunded = [e for e in hooked.fake.events if e["type"] == "charge.refunded"]
    for event in charge_refunded * 3:  # replays: applied once
        assert (await hooked.fake.send(event)).status_code == 200
    assert len(await refunds_in_ledger(database)) == 1
    assert await refunded_events(database) == 1

    # The host cancels: a full refund is what is left, never more than was captured.
    canceled = await cancel(client, booking["id"], place.as_host)
    assert (canceled["payment"]["status"], canceled["payment"]["refundedAmount"]["amount"]) == (
        "REFUNDED", "262.20"
    )  # fmt: skip
    amounts = [refund["amount"] for refund in hooked.fake.refunds.values()]
    assert amounts == [5_000, TOTAL - 5_000]
    # The charge.refunded of our own refund says 262.20 in all: nothing more to record.
    for event in [e for e in hooked.fake.events if e["type"] == "charge.refunded"]:
        await hooked.fake.send(event)
    assert sum(amount for _, amount, _ in await refunds_in_ledger(database)) == TOTAL


async def test_a_refund_event_whose_amount_is_not_ours_is_not_believed(
    client: httpx.AsyncClient, database: Database, hooked: Stripe
) -> None:
    place = await a_place(client)
    booking = await paid_and_confirmed(client, hooked, place)
    hooked.fake.refunds_pending()
    await cancel(client, booking["id"], place.as_host)
    [refund] = hooked.fake.refunds.values()
    for change in ({"amount": 100}, {"currency": "usd"}):
        forged = hooked.fake.event("refund.updated", {**refund, "status": "succeeded", **change})
        assert (await hooked.fake.send(forged)).status_code == 200
    assert await refunds_in_ledger(database) == [("REQUESTED", TOTAL, refund["id"])]
    after = await read(client, booking["id"], place.as_guest)
    assert (after["payment"]["status"], after["payment"]["refundedAmount"]["amount"]) == (
        "SUCCEEDED", "0.00"
    )  # fmt: skip
