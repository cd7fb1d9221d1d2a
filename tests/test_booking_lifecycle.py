"""Bookings moved along by time and by workers: holds lapse, stays complete, events are handled
once even when a worker dies."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import select
from starlette.applications import Starlette

from app.wiring import build_worker
from app.worker import Worker
from db.database import Database
from db.models import OutboxEvent
from tests.accounts_helpers import mails_to
from tests.booking_helpers import (
    ACCEPT,
    a_place,
    book,
    booked,
    pay,
    read,
)
from tests.helpers import FakeClock, gql


def worker_of(app: Starlette) -> Worker:
    return build_worker(app.state.settings, app.state.database, app.state.services)


async def guest_email(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    return (await gql(client, "{ me { email } }", headers=headers))["data"]["me"]["email"]


async def test_an_unpaid_hold_lapses_after_fifteen_minutes(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 13)
    worker = worker_of(app)

    clock.advance(minutes=14, seconds=59)
    await worker.run_once()
    assert (await read(client, booking["id"], place.as_guest))["status"] == "PENDING"

    clock.advance(seconds=1)
    await worker.run_once()
    lapsed = await read(client, booking["id"], place.as_guest)
    assert lapsed["status"] == "CANCELED"
    assert (lapsed["canceledBy"], lapsed["cancelReason"]) == ("SYSTEM", "Not paid in time.")
    # The nights are free again.
    assert "errors" not in await book(client, place, 10, 13)


async def test_a_lapsed_hold_can_no_longer_be_paid(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 13)
    started = await gql(
        client,
        "mutation($id: ID!) { startPayment(bookingId: $id, provider: TEST) { payment { id } } }",
        {"id": booking["id"]},
        headers=place.as_guest,
    )
    payment_id = started["data"]["startPayment"]["payment"]["id"]
    clock.advance(minutes=16)  # the worker has not run yet: the hold has lapsed all the same
    confirmed = await gql(
        client,
        "mutation($id: ID!) { confirmTestPayment(paymentId: $id) { status } }",
        {"id": payment_id},
        headers=place.as_guest,
    )
    assert confirmed["errors"][0]["extensions"]["code"] == "CONFLICT"
    restarted = await gql(
        client,
        "mutation($id: ID!) { startPayment(bookingId: $id, provider: TEST) { payment { id } } }",
        {"id": booking["id"]},
        headers=place.as_guest,
    )
    assert restarted["errors"][0]["extensions"]["code"] == "CONFLICT"


async def test_an_unanswered_request_lapses_after_a_day_and_releases_the_payment(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client, instantBook=False)
    booking = await booked(client, place, 10, 13)
    assert (await pay(client, place, booking["id"]))["status"] == "AUTHORIZED"
    waiting = await read(client, booking["id"], place.as_host)
    assert waiting["status"] == "PENDING"
    assert waiting["expiresAt"] == "2027-01-12T12:00:00+00:00"

    clock.advance(hours=24, seconds=1)
    await worker_of(app).run_once()
    lapsed = await read(client, booking["id"], place.as_guest)
    assert lapsed["status"] == "CANCELED"
    assert lapsed["cancelReason"] == "The host did not answer in time."
    assert lapsed["payment"]["status"] == "CANCELED"
    assert lapsed["refundAmount"]["amount"] == "0.00"  # nothing was ever taken
    late = await gql(client, ACCEPT, {"id": booking["id"]}, headers=place.as_host)
    assert late["errors"][0]["extensions"]["code"] == "CONFLICT"


async def test_a_stay_completes_after_check_out_time_where_the_listing_is(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    # Tokyo is UTC+9: check-out at 11:00 there is 02:00 UTC.
    place = await a_place(
        client, latitude=35.6762, longitude=139.6503, address={"city": "Tokyo", "country": "JP"},
        nightlyPrice={"amount": "12000", "currency": "JPY"}, cleaningFee=None,
    )  # fmt: skip
    booking = await booked(client, place, 1, 3)
    await pay(client, place, booking["id"])
    worker = worker_of(app)
    await worker.run_once()  # BookingConfirmed: guest and host hear of it

    clock.now = clock.now.replace(day=14, hour=1, minute=59)  # 10:59 in Tokyo on check-out day
    await worker.run_once()
    assert (await read(client, booking["id"], place.as_guest))["status"] == "CONFIRMED"
    clock.advance(minutes=1)
    await worker.run_once()
    assert (await read(client, booking["id"], place.as_guest))["status"] == "COMPLETED"

    address = await guest_email(client, place.as_guest)
    mails = await mails_to(app, address, count=3)  # the first asks to verify the email
    subjects = [mail["Subject"] for mail in mails[1:]]
    assert subjects == ["Your stay at Alfama loft with a view is confirmed",
                        "How was Alfama loft with a view?"]  # fmt: skip


async def test_two_workers_handle_each_event_once(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    places = [await a_place(client) for _ in range(3)]
    for place in places:
        for start in (5, 10, 15):
            await pay(client, place, (await booked(client, place, start, start + 2))["id"])

    await asyncio.gather(worker_of(app).run_once(), worker_of(app).run_once())

    for place in places:
        address = await guest_email(client, place.as_guest)
        mails = await mails_to(app, address, count=3)
        confirmations = [m for m in mails if m["Subject"].endswith("is confirmed")]
        assert len(confirmations) == 3
        assert len({m["Message-ID"] for m in confirmations}) == 3
    async with database.read_session() as session:
        events = (await session.scalars(select(OutboxEvent))).all()
    assert events and all(e.processed_at is not None and e.attempts == 1 for e in events)


async def test_an_event_claimed_by_a_worker_that_dies_is_handled_once_by_another(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, tmp_path: Path
) -> None:
    place = await a_place(client)
    await pay(client, place, (await booked(client, place, 10, 13))["id"])
    marker = tmp_path / "claimed"
    child = subprocess.Popen(  # noqa: ASYNC220, S603 (our own module; waited for in a thread)
        [sys.executable, "-m", "tests.worker_child", app.state.settings.database_url,
         clock.now.isoformat(), str(marker)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )  # fmt: skip
    try:
        async with asyncio.timeout(30):
            while not marker.exists():
                assert child.poll() is None, "the worker exited before claiming"
                await asyncio.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        await asyncio.to_thread(child.wait)

    async with database.read_session() as session:
        confirmed = await session.scalar(
            select(OutboxEvent).where(OutboxEvent.kind == "BookingConfirmed")
        )
    assert confirmed.processed_at is None and confirmed.attempts == 1  # claimed, never finished

    worker = worker_of(app)
    await worker.run_once()  # the dead worker's lease still holds
    assert not await _processed(database, confirmed.id)
    clock.advance(seconds=61)
    await worker.run_once()
    await worker.run_once()
    assert await _processed(database, confirmed.id)
    address = await guest_email(client, place.as_guest)
    mails = await mails_to(app, address)
    assert [m["Subject"] for m in mails].count(
        "Your stay at Alfama loft with a view is confirmed"
    ) == 1


async def _processed(database: Database, event_id: int) -> bool:
    async with database.read_session() as session:
        event = await session.get(OutboxEvent, event_id)
        return event is not None and event.processed_at is not None
