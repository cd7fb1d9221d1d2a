"""Money in three steps: the intent is committed, the provider is asked with no lock of ours
held, and the answer is applied in a second transaction, by the request or, after a crash,
by the worker's recovery job, exactly once."""

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from starlette.applications import Starlette
from strawberry import relay

from app.wiring import build_worker
from app.worker import Worker
from db.database import Database
from db.models import Booking, Listing, OutboxEvent, Payment, PaymentOperation, User
from gateways.payments import PaymentGateway, TestPaymentGateway
from services import checkout, payments
from services.payments import Answer, Gateways, IllegalTransition
from tests.accounts_helpers import error_code
from tests.booking_helpers import (
    ACCEPT,
    CANCEL,
    CONFIRM_PAYMENT,
    MODIFY,
    START_PAYMENT,
    Place,
    a_place,
    book,
    booked,
    day,
    pay,
    read,
)
from tests.fakes.payment_provider import (
    PROVIDER_TABLE,
    BlockingProvider,
    LedgerProvider,
    declining,
    silent,
)
from tests.helpers import START, FakeClock, committed, gql

ROOT = Path(__file__).parent.parent
# Every row a change of this booking locks, and the row every search-affecting write bumps:
# each must be free while the provider is asked.
LOCKS = [
    "SELECT 1 FROM listing WHERE id = (SELECT listing_id FROM booking WHERE id = :id)",
    "SELECT 1 FROM booking WHERE id = :id",
    "SELECT 1 FROM payment WHERE booking_id = :id",
    "SELECT 1 FROM payment_operation WHERE payment_id IN "
    "(SELECT id FROM payment WHERE booking_id = :id)",
    "SELECT 1 FROM search_generation",
]

UseProvider = Callable[[PaymentGateway], None]


@pytest.fixture
def use_provider(app: Starlette) -> Iterator[UseProvider]:
    """Puts ``gateway`` in the place of the TEST provider, for requests and workers alike."""
    before = app.state.services.payment_gateways

    def use(gateway: PaymentGateway) -> None:
        app.state.services = replace(
            app.state.services, payment_gateways=Gateways({"TEST": gateway})
        )

    yield use
    app.state.services = replace(app.state.services, payment_gateways=before)


def number(global_id: str) -> int:
    return int(relay.GlobalID.from_id(global_id).node_id)


def worker_of(app: Starlette) -> Worker:
    return build_worker(app.state.settings, app.state.database, app.state.services)


async def while_asked(
    database: Database,
    provider: BlockingProvider,
    booking_id: str,
    change: Coroutine[Any, Any, Any],
) -> Any:
    """Runs ``change``; once it is asking the provider, takes every lock of the booking without
    waiting (NOWAIT fails at once if any is held), then lets the provider answer."""
    task = asyncio.create_task(change)
    waiting = asyncio.create_task(provider.entered.wait())
    async with asyncio.timeout(10):
        await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    assert provider.entered.is_set(), task.result()
    try:
        async with committed(database) as session:
            for lock in LOCKS:
                await session.execute(text(f"{lock} FOR UPDATE NOWAIT"), {"id": number(booking_id)})
    finally:
        provider.answer.set()
        waiting.cancel()
    async with asyncio.timeout(10):
        return await task


def starting(booking_id: str) -> dict[str, object]:
    return {"id": booking_id, "provider": "TEST"}


def paying(payment_id: str) -> dict[str, object]:
    return {"id": payment_id, "succeed": True}


async def started_payment(client: httpx.AsyncClient, place: Place, booking_id: str) -> str:
    body = await gql(client, START_PAYMENT, starting(booking_id), headers=place.as_guest)
    assert "errors" not in body, body
    return body["data"]["startPayment"]["payment"]["id"]


async def ledger(database: Database) -> list[tuple[str, str]]:
    async with database.read_session() as session:
        rows = await session.execute(
            select(PaymentOperation.kind, PaymentOperation.status).order_by(PaymentOperation.id)
        )
    return [tuple(row) for row in rows]


async def events_of(database: Database, kind: str) -> int:
    async with database.read_session() as session:
        found = await session.scalars(select(OutboxEvent.id).where(OutboxEvent.kind == kind))
        return len(found.all())


# No lock of ours is held while the provider is asked.


async def test_paying_an_instant_booking_holds_no_lock_while_the_capture_is_asked(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, use_provider: UseProvider
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    payment_id = await started_payment(client, place, booking["id"])
    provider = BlockingProvider()
    use_provider(provider)
    confirm = gql(client, CONFIRM_PAYMENT, paying(payment_id), headers=place.as_guest)
    body = await while_asked(database, provider, booking["id"], confirm)
    assert body["data"]["confirmTestPayment"]["status"] == "SUCCEEDED"
    assert provider.calls == ["capture"]
    assert (await read(client, booking["id"], place.as_guest))["status"] == "CONFIRMED"


async def test_starting_a_payment_holds_no_lock_while_the_provider_creates_it(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, use_provider: UseProvider
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    provider = BlockingProvider()
    use_provider(provider)
    start = gql(client, START_PAYMENT, starting(booking["id"]), headers=place.as_guest)
    body = await while_asked(database, provider, booking["id"], start)
    started = body["data"]["startPayment"]
    assert started["payment"]["status"] == "PENDING" and started["clientSecret"]
    async with database.read_session() as session:
        assert (await session.scalar(select(Payment.provider_reference))).startswith("test_pi_")
    # Started again, the provider is asked again under the same key: the same payment.
    again = await gql(client, START_PAYMENT, starting(booking["id"]), headers=place.as_guest)
    assert again["data"]["startPayment"] == started


async def test_accepting_holds_no_lock_while_the_capture_is_asked(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, use_provider: UseProvider
) -> None:
    place = await a_place(client, instantBook=False)
    booking = await booked(client, place, 10, 12)
    await pay(client, place, booking["id"])
    provider = BlockingProvider()
    use_provider(provider)
    accept = gql(client, ACCEPT, {"id": booking["id"]}, headers=place.as_host)
    body = await while_asked(database, provider, booking["id"], accept)
    accepted = body["data"]["acceptBooking"]
    assert (accepted["status"], accepted["payment"]["status"]) == ("CONFIRMED", "SUCCEEDED")


async def test_cancelling_holds_no_lock_while_the_refund_is_asked(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, use_provider: UseProvider
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    await pay(client, place, booking["id"])
    provider = BlockingProvider()
    use_provider(provider)
    cancel = gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_guest)
    body = await while_asked(database, provider, booking["id"], cancel)
    canceled = body["data"]["cancelBooking"]
    assert (canceled["status"], canceled["payment"]["status"]) == ("CANCELED", "REFUNDED")
    assert canceled["payment"]["refundedAmount"] == canceled["refundAmount"] == {"amount": "262.20"}


async def test_expiring_holds_no_lock_while_the_release_is_asked(
    app: Starlette,
    client: httpx.AsyncClient,
    database: Database,
    clock: FakeClock,
    use_provider: UseProvider,
) -> None:
    place = await a_place(client, instantBook=False)
    booking = await booked(client, place, 10, 12)
    await pay(client, place, booking["id"])
    provider = BlockingProvider()
    use_provider(provider)
    clock.advance(hours=24, seconds=1)
    await while_asked(database, provider, booking["id"], worker_of(app).run_once())
    assert provider.calls == ["release"]
    lapsed = await read(client, booking["id"], place.as_guest)
    assert (lapsed["status"], lapsed["payment"]["status"]) == ("CANCELED", "CANCELED")


async def test_a_longer_stay_holds_no_lock_while_the_charge_is_asked(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, use_provider: UseProvider
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    await pay(client, place, booking["id"])
    provider = BlockingProvider()
    use_provider(provider)
    variables = {"id": booking["id"], "in": day(10), "out": day(13), "guests": 2}
    modify = gql(client, MODIFY, variables, headers=place.as_guest)
    body = await while_asked(database, provider, booking["id"], modify)
    longer = body["data"]["modifyBooking"]
    assert (longer["checkOut"], longer["payment"]["amount"]) == (day(13), {"amount": "376.20"})


# While an answer is awaited.


async def test_another_money_change_waits_for_the_answer_in_flight(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, use_provider: UseProvider
) -> None:
    place = await a_place(client, instantBook=False)
    booking = await booked(client, place, 10, 12)
    await pay(client, place, booking["id"])
    provider = BlockingProvider()
    use_provider(provider)
    accept = asyncio.create_task(gql(client, ACCEPT, {"id": booking["id"]}, headers=place.as_host))
    async with asyncio.timeout(10):
        await provider.entered.wait()
    # Cancelling now would let go of a hold the provider may be capturing this moment.
    body = await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_guest)
    assert error_code(body) == "CONFLICT"
    assert body["errors"][0]["message"] == payments.IN_FLIGHT
    provider.answer.set()
    assert (await accept)["data"]["acceptBooking"]["status"] == "CONFIRMED"
    canceled = await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_guest)
    assert canceled["data"]["cancelBooking"]["payment"]["status"] == "REFUNDED"


async def test_nights_taken_while_a_longer_stay_is_charged_are_refunded_and_conflict(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, use_provider: UseProvider
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)  # 262.20
    await pay(client, place, booking["id"])
    provider = BlockingProvider()
    use_provider(provider)
    variables = {"id": booking["id"], "in": day(10), "out": day(13), "guests": 2}
    modify = asyncio.create_task(gql(client, MODIFY, variables, headers=place.as_guest))
    async with asyncio.timeout(10):
        await provider.entered.wait()
    other = await a_place(client)  # another guest takes the night while the charge is asked
    assert "errors" not in await book(client, replace(place, guest=other.guest), 12, 13)
    provider.answer.set()
    assert error_code(await modify) == "CONFLICT"
    kept = await read(client, booking["id"], place.as_guest)
    assert kept["checkOut"] == day(12) and kept["status"] == "CONFIRMED"
    # 114.00 was charged, then given back.
    assert kept["payment"]["amount"] == {"amount": "376.20"}
    assert kept["payment"]["refundedAmount"] == {"amount": "114.00"}
    assert provider.calls == ["charge", "refund"]
    assert (await ledger(database))[-2:] == [("CHARGE", "SUCCEEDED"), ("REFUND", "SUCCEEDED")]


async def test_a_declined_capture_leaves_the_booking_pending_for_another_card(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, use_provider: UseProvider
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    payment_id = await started_payment(client, place, booking["id"])
    use_provider(declining())
    body = await gql(client, CONFIRM_PAYMENT, paying(payment_id), headers=place.as_guest)
    assert error_code(body) == "PAYMENT_FAILED"
    assert body["errors"][0]["message"] == "Your card has insufficient funds."
    waiting = await read(client, booking["id"], place.as_guest)
    assert (waiting["status"], waiting["payment"]["status"]) == ("PENDING", "FAILED")
    assert await ledger(database) == [("AUTHORIZE", "SUCCEEDED"), ("CAPTURE", "FAILED")]
    use_provider(TestPaymentGateway())
    assert (await pay(client, place, booking["id"]))["status"] == "SUCCEEDED"
    assert (await read(client, booking["id"], place.as_guest))["status"] == "CONFIRMED"


# Recovery: answers that never landed.


async def test_a_capture_left_unanswered_is_asked_again_by_one_worker_and_applied_once(
    app: Starlette,
    client: httpx.AsyncClient,
    database: Database,
    clock: FakeClock,
    use_provider: UseProvider,
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    payment_id = await started_payment(client, place, booking["id"])
    use_provider(silent())
    response = await client.post(
        "/graphql",
        json={"query": CONFIRM_PAYMENT, "variables": paying(payment_id)},
        headers=place.as_guest,
    )
    assert response.status_code == 503  # as for any backing service out of reach
    assert error_code(response.json()) == "SERVICE_UNAVAILABLE"
    assert await ledger(database) == [("AUTHORIZE", "SUCCEEDED"), ("CAPTURE", "REQUESTED")]
    # Until the answer comes, no other money change, and no expiry, touches the booking.
    assert error_code(await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_guest)) == (
        "CONFLICT"
    )

    provider = BlockingProvider()
    provider.answer.set()
    use_provider(provider)
    await worker_of(app).run_once()  # not a minute yet: the request may still be answered
    assert provider.calls == []
    clock.advance(minutes=16)  # past the hold, too: the capture still decides
    await asyncio.gather(worker_of(app).run_once(), worker_of(app).run_once())

    assert provider.calls == ["capture"]
    assert await ledger(database) == [("AUTHORIZE", "SUCCEEDED"), ("CAPTURE", "SUCCEEDED")]
    confirmed = await read(client, booking["id"], place.as_guest)
    assert (confirmed["status"], confirmed["payment"]["status"]) == ("CONFIRMED", "SUCCEEDED")
    assert await events_of(database, "BookingConfirmed") == 1
    assert await events_of(database, "PaymentSucceeded") == 1


async def test_a_provider_that_stays_down_is_asked_again_with_backoff(
    app: Starlette,
    client: httpx.AsyncClient,
    database: Database,
    clock: FakeClock,
    use_provider: UseProvider,
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    payment_id = await started_payment(client, place, booking["id"])
    down = silent()
    use_provider(down)
    response = await client.post(
        "/graphql",
        json={"query": CONFIRM_PAYMENT, "variables": paying(payment_id)},
        headers=place.as_guest,
    )
    assert error_code(response.json()) == "SERVICE_UNAVAILABLE"
    assert down.asked == 1

    for _ in range(64):  # an hour of the worker passing every minute
        clock.advance(minutes=1)
        await worker_of(app).run_once()

    # Asked again after 1, 2, 4, 8, 16, 32 and 64 minutes of silence; once a minute was 64.
    assert down.asked == 1 + 7
    assert await ledger(database) == [("AUTHORIZE", "SUCCEEDED"), ("CAPTURE", "REQUESTED")]


async def test_an_answer_applied_by_two_at_once_lands_once(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    place = await a_place(client, instantBook=False)
    booking = await booked(client, place, 10, 12)
    await pay(client, place, booking["id"])
    async with database.read_session() as session:
        stored = await session.get(Booking, number(booking["id"]))
        assert stored is not None
        host = await session.scalar(
            select(User)
            .join(Listing, Listing.host_id == User.id)
            .where(Listing.id == stored.listing_id)
        )
    # The host's decision, recorded; the provider's answer then reaches two at once (two
    # workers, or a worker and the request).
    async with committed(database) as session:
        call = await checkout.answer_request(
            session, actor=host, booking_id=stored.id, accept=True, reason=None, now=clock.now
        )
    assert call is not None
    answer = Answer(reference="ch_1")
    outcomes = await asyncio.gather(
        *(
            database.transaction(
                partial(
                    checkout.apply, operation_id=call.operation_id, answer=answer, now=clock.now
                )
            )
            for _ in range(2)
        )
    )
    assert outcomes == [checkout.Outcome(), checkout.Outcome()]
    assert await ledger(database) == [("AUTHORIZE", "SUCCEEDED"), ("CAPTURE", "SUCCEEDED")]
    assert (await read(client, booking["id"], place.as_host))["status"] == "CONFIRMED"
    assert await events_of(database, "BookingConfirmed") == 1
    assert await events_of(database, "PaymentSucceeded") == 1


async def test_a_process_killed_between_the_answer_and_its_transaction_charges_once(
    app: Starlette,
    client: httpx.AsyncClient,
    database: Database,
    clock: FakeClock,
    use_provider: UseProvider,
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    payment_id = await started_payment(client, place, booking["id"])
    url = app.state.settings.database_url
    async with committed(database) as session:
        await session.execute(text(PROVIDER_TABLE))
        await session.execute(text("TRUNCATE fake_provider_call"))
    try:
        child = subprocess.Popen(  # noqa: ASYNC220, S603 (our own module; waited for in a thread)
            [sys.executable, "-m", "tests.payment_child", url, clock.now.isoformat(),
             str(number(booking["guest"]["id"])), str(number(payment_id))],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        try:
            code = await asyncio.to_thread(child.wait, 60)
        finally:
            if child.poll() is None:
                child.kill()
        assert code == -signal.SIGKILL
        assert await provider_calls(database) == [("capture", 26_220)]
        assert await ledger(database) == [("AUTHORIZE", "SUCCEEDED"), ("CAPTURE", "REQUESTED")]
        assert (await read(client, booking["id"], place.as_guest))["status"] == "PENDING"

        use_provider(LedgerProvider(url))
        clock.advance(seconds=61)
        await worker_of(app).run_once()

        assert await provider_calls(database) == [("capture", 26_220)]  # asked again: deduped
        assert await ledger(database) == [("AUTHORIZE", "SUCCEEDED"), ("CAPTURE", "SUCCEEDED")]
        confirmed = await read(client, booking["id"], place.as_guest)
        assert (confirmed["status"], confirmed["payment"]["status"]) == ("CONFIRMED", "SUCCEEDED")
    finally:
        async with committed(database) as session:
            await session.execute(text("DROP TABLE IF EXISTS fake_provider_call"))


async def provider_calls(database: Database) -> list[tuple[str, int]]:
    async with database.read_session() as session:
        rows = await session.execute(text("SELECT kind, amount_minor FROM fake_provider_call"))
    return [tuple(row) for row in rows]


# The transition tables.


async def test_an_illegal_payment_transition_raises(database: Database) -> None:
    refunded = Payment(id=1, booking_id=1, status="REFUNDED", amount_minor=100, refunded_minor=100)
    async with database.read_session() as session:
        with pytest.raises(IllegalTransition, match="REFUNDED cannot become AUTHORIZED"):
            payments.authorize(session, refunded, now=START)
        with pytest.raises(IllegalTransition, match="REFUNDED cannot become FAILED"):
            payments.fail(session, refunded, reason="declined", now=START)
        with pytest.raises(IllegalTransition, match="nothing to capture"):
            await payments.request_capture(session, refunded, effect={}, now=START)
        answered = PaymentOperation(id=1, kind="REFUND", status="SUCCEEDED", amount_minor=100)
        with pytest.raises(IllegalTransition, match="SUCCEEDED cannot become FAILED"):
            payments.complete(session, answered, refunded, Answer(declined="no"), now=START)
    assert refunded.status == "REFUNDED"
