"""Host payouts through HTTP and the worker: a host connects a Stripe account (the fake of
Stripe's API, tests/fakes/stripe_api.py, sending its signed webhooks to the app), and each
completed stay pays its host once, exactly, a day after check-out."""

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, update
from starlette.applications import Starlette

from db.database import Database
from db.models import OutboxEvent, Payment
from services.pricing import host_payout
from tests.accounts_helpers import error_code
from tests.booking_helpers import MODIFY, a_place, booked, day, pay
from tests.helpers import FakeClock, StatementCounter, committed, gql
from tests.listing_helpers import create
from tests.payout_helpers import (
    ACCOUNT,
    CONNECT,
    EARNINGS,
    PAYOUTS,
    REFRESH_URL,
    RETURN_URL,
    completed_stay,
    connect,
    payout_stripe,
    payouts_in,
    read_payouts,
    ready_account,
    run_worker,
)
from tests.stripe_helpers import Stripe

ROOT = Path(__file__).parent.parent


@pytest.fixture
async def stripe(app: Starlette, database: Database, clock: FakeClock) -> AsyncIterator[Stripe]:
    async with payout_stripe(app, clock) as stripe:
        yield stripe


def priced_in(currency: str, nightly: str, cleaning: str) -> dict[str, object]:
    return {
        "nightlyPrice": {"amount": nightly, "currency": currency},
        "cleaningFee": {"amount": cleaning, "currency": currency},
    }


async def sent_events(database: Database) -> int:
    async with database.read_session() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.kind == "PayoutSent")
            )
        )


# The money rule, by hand.


@pytest.mark.parametrize(
    ("nights", "cleaning", "total", "kept", "unit", "expected"),
    [
        # 2 x 100.00 EUR + 30.00: the fee is 3% of 230.00 = 6.90; the guest's 14% is Roost's.
        ((10_000, 10_000), 3_000, 26_220, 26_220, 1, (22_310, 690, 0)),
        # 2 x 12,345 JPY + 3,000 = 27,690: 3% is 830.7, rounded half up to 831 yen.
        ((12_345, 12_345), 3_000, 31_567, 31_567, 1, (26_859, 831, 0)),
        # 2 x 30.010 KWD + 5.000 = 65.020: 3% is 1.9506 -> 1.951; 63.069 is sent as 63.060
        # (Stripe moves dinars in tens of fils), the 9 fils join the fee.
        ((30_010, 30_010), 5_000, 74_123, 74_123, 10, (63_060, 1_960, 0)),
        # 40.00 of 262.20 refunded: the host bears it.
        ((10_000, 10_000), 3_000, 26_220, 22_220, 1, (18_310, 690, 4_000)),
        # Everything refunded: nothing is paid, never less than nothing.
        ((10_000, 10_000), 3_000, 26_220, 0, 1, (0, 690, 26_220)),
    ],
)
def test_the_host_is_paid_nights_and_cleaning_less_the_fee_and_refunds(
    nights: tuple[int, ...],
    cleaning: int,
    total: int,
    kept: int,
    unit: int,
    expected: tuple[int, int, int],
) -> None:
    split = host_payout(
        nightly_subtotal=sum(nights),
        cleaning_fee=cleaning,
        total=total,
        kept=kept,
        host_fee_percent=Decimal(3),
        unit=unit,
    )
    assert (split.amount, split.host_fee, split.refunds) == expected


# Connecting an account.


async def test_a_host_connects_one_account_and_is_sent_to_stripes_onboarding(
    client: httpx.AsyncClient, stripe: Stripe
) -> None:
    place = await a_place(client)
    assert (await gql(client, ACCOUNT, headers=place.as_host))["data"]["payoutAccount"] is None
    first, second = await asyncio.gather(
        connect(client, place.as_host), connect(client, place.as_host)
    )
    [account] = stripe.fake.accounts.values()  # two requests at once, one account
    assert account["type"] == "express"
    assert account["capabilities"] == {"transfers": "inactive"}
    assert account["country"] == "PT"  # where the host's listing is
    for answer in (first, second):
        assert answer["url"].startswith(f"https://connect.stripe.com/setup/e/{account['id']}/")
        assert answer["account"] == {"status": "ONBOARDING", "ready": False, "readyAt": None}
    link = stripe.fake.account_links[-1]["params"]
    assert (link["type"], link["return_url"], link["refresh_url"]) == (
        "account_onboarding", RETURN_URL, REFRESH_URL,
    )  # fmt: skip
    # Later: the same account, a fresh link.
    again = await connect(client, place.as_host)
    assert len(stripe.fake.accounts) == 1 and len(stripe.fake.account_links) == 3
    assert again["url"] != first["url"]

    await stripe.fake.onboard(account["id"])  # Stripe's signed account.updated
    ready = (await gql(client, ACCOUNT, headers=place.as_host))["data"]["payoutAccount"]
    assert (ready["status"], ready["ready"]) == ("READY", True)


async def test_return_urls_must_be_web_addresses_of_bounded_length(
    client: httpx.AsyncClient, stripe: Stripe
) -> None:
    place = await a_place(client)
    for ret, refresh, field in [
        ("javascript:alert(1)", REFRESH_URL, "returnUrl"),
        (RETURN_URL, "https://" + "a" * 2_000 + ".example", "refreshUrl"),
        (RETURN_URL, "/relative", "refreshUrl"),
        ("http://[::1/done", REFRESH_URL, "returnUrl"),
    ]:
        body = await gql(client, CONNECT, {"ret": ret, "refresh": refresh}, headers=place.as_host)
        assert error_code(body) == "BAD_USER_INPUT"
        assert set(body["errors"][0]["extensions"]["fields"]) == {field}
    assert stripe.fake.accounts == {}


async def test_payouts_are_the_hosts_alone(client: httpx.AsyncClient, stripe: Stripe) -> None:
    place = await a_place(client)
    range_ = {"from": day(0), "to": day(30)}
    for query, variables in [
        (ACCOUNT, {}),
        (PAYOUTS, {"first": 5}),
        (EARNINGS, range_),
        (CONNECT, {"ret": RETURN_URL, "refresh": REFRESH_URL}),
    ]:
        body = await gql(client, query, variables, headers=place.as_guest)
        assert error_code(body) == "FORBIDDEN", query
        assert error_code(await gql(client, query, variables)) == "UNAUTHENTICATED"
    assert stripe.fake.accounts == {}


# Paying a completed stay.


async def test_a_completed_stay_pays_its_host_once_a_day_after_check_out(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    account = await ready_account(client, stripe, place)
    booking = await completed_stay(app, client, clock, place)  # 262.20 EUR paid
    stripe.fake.endpoint = None  # the transfer's webhook is lost: the worker's answer counts

    clock.advance(hours=22, minutes=59)  # check-out was at 11:00 yesterday
    await run_worker(app)
    assert await payouts_in(database) == []

    clock.advance(minutes=1)
    await run_worker(app)
    [transfer] = stripe.fake.transfers.values()
    assert (transfer["amount"], transfer["currency"], transfer["destination"]) == (
        22_310, "eur", account,
    )  # fmt: skip
    assert transfer["transfer_group"] == f"booking-{(await payouts_in(database))[0].booking_id}"
    [payout] = await read_payouts(client, place.as_host)
    assert payout["status"] == "PAID"
    assert payout["amount"] == {"amount": "223.10", "currency": "EUR"}
    assert (payout["hostFee"], payout["refunds"]) == ({"amount": "6.90"}, {"amount": "0.00"})
    assert payout["booking"] == {"id": booking["id"], "checkOut": day(12)}
    assert payout["paidAt"] is not None and payout["nextAttemptAt"] is None
    [row] = await payouts_in(database)
    assert row.provider_transfer_id == transfer["id"]

    clock.advance(days=2)
    await run_worker(app)
    await run_worker(app)
    assert len(stripe.fake.transfers) == 1
    assert await sent_events(database) == 1


@pytest.mark.parametrize(
    ("currency", "nightly", "cleaning", "stripe_amount", "amount", "fee"),
    [
        ("JPY", "12345", "3000", 26_859, "26859", "831"),
        ("KWD", "30.010", "5.000", 63_060, "63.060", "1.960"),
    ],
)
async def test_yen_and_dinars_are_paid_exactly(
    app: Starlette,
    client: httpx.AsyncClient,
    clock: FakeClock,
    stripe: Stripe,
    currency: str,
    nightly: str,
    cleaning: str,
    stripe_amount: int,
    amount: str,
    fee: str,
) -> None:
    place = await a_place(client, **priced_in(currency, nightly, cleaning))
    await ready_account(client, stripe, place)
    await completed_stay(app, client, clock, place)
    clock.advance(days=1)
    await run_worker(app)
    [transfer] = stripe.fake.transfers.values()
    assert (transfer["amount"], transfer["currency"]) == (stripe_amount, currency.lower())
    [payout] = await read_payouts(client, place.as_host)
    assert (payout["status"], payout["amount"], payout["hostFee"]) == (
        "PAID", {"amount": amount, "currency": currency}, {"amount": fee},
    )  # fmt: skip


async def test_a_host_without_a_ready_account_is_paid_once_stripe_says_it_is_ready(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    await completed_stay(app, client, clock, place)
    clock.advance(days=1)
    await run_worker(app)
    [payout] = await read_payouts(client, place.as_host)
    assert (payout["status"], payout["amount"]["amount"]) == ("PENDING", "223.10")

    await connect(client, place.as_host)  # onboarding not finished: still nothing sent
    clock.advance(hours=1)
    await run_worker(app)
    assert stripe.fake.transfers == {}

    [account] = stripe.fake.accounts.values()
    await stripe.fake.onboard(account["id"])
    await run_worker(app)
    [transfer] = stripe.fake.transfers.values()
    assert transfer["amount"] == 22_310
    assert [p["status"] for p in await read_payouts(client, place.as_host)] == ["PAID"]


async def test_an_account_stripe_restricts_is_not_paid_until_it_is_ready_again(
    app: Starlette, client: httpx.AsyncClient, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    account = await ready_account(client, stripe, place)
    await stripe.fake.onboard(account, payouts_enabled=False)  # Stripe wants more from the host
    restricted = (await gql(client, ACCOUNT, headers=place.as_host))["data"]["payoutAccount"]
    assert (restricted["status"], restricted["ready"]) == ("RESTRICTED", False)
    await completed_stay(app, client, clock, place)
    clock.advance(days=1)
    await run_worker(app)
    assert stripe.fake.transfers == {}
    await stripe.fake.onboard(account)
    await run_worker(app)
    assert len(stripe.fake.transfers) == 1


async def test_refunds_reduce_the_payout(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    await ready_account(client, stripe, place)
    await completed_stay(app, client, clock, place)
    async with committed(database) as session:  # 40.00 EUR given back, as a refund records it
        await session.execute(update(Payment).values(refunded_minor=4_000))
    clock.advance(days=1)
    await run_worker(app)
    [payout] = await read_payouts(client, place.as_host)
    assert (payout["amount"]["amount"], payout["refunds"]["amount"]) == ("183.10", "40.00")
    assert [t["amount"] for t in stripe.fake.transfers.values()] == [18_310]


async def test_a_stay_shortened_before_arrival_is_paid_at_its_new_price_once(
    app: Starlette, client: httpx.AsyncClient, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    await ready_account(client, stripe, place)
    booking = await booked(client, place, 10, 13)  # three nights: 376.20 EUR
    await pay(client, place, booking["id"])
    shortened = await gql(
        client,
        MODIFY,
        {"id": booking["id"], "in": day(10), "out": day(12), "guests": 2},
        headers=place.as_guest,
    )
    # The difference went back to the guest; the booking's price is the new one.
    assert shortened["data"]["modifyBooking"]["payment"]["refundedAmount"] == {"amount": "114.00"}
    clock.advance(days=13)
    await run_worker(app)  # completed
    await run_worker(app)  # paid a day later
    [payout] = await read_payouts(client, place.as_host)
    assert (payout["amount"]["amount"], payout["refunds"]["amount"]) == ("223.10", "0.00")


# When Stripe does not answer, or refuses.


async def test_no_answer_is_asked_again_later_under_the_same_key(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    await ready_account(client, stripe, place)
    await completed_stay(app, client, clock, place)
    clock.advance(days=1)
    stripe.fake.outage(1, status=500)
    await run_worker(app)
    [payout] = await read_payouts(client, place.as_host)
    assert payout["status"] == "PENDING" and stripe.fake.transfers == {}
    assert payout["nextAttemptAt"] == (clock.now + timedelta(minutes=1)).isoformat()

    await run_worker(app)  # not yet
    assert len(transfer_requests(stripe)) == 1
    clock.advance(minutes=1)
    await run_worker(app)
    assert [p["status"] for p in await read_payouts(client, place.as_host)] == ["PAID"]
    assert len(stripe.fake.transfers) == 1 and len(transfer_requests(stripe)) == 2
    [row] = await payouts_in(database)
    assert (row.idempotency_key, row.attempts) == (f"payout-{row.id}", 2)


async def test_a_refused_transfer_fails_and_is_tried_again_later_under_a_new_key(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    await ready_account(client, stripe, place)
    await completed_stay(app, client, clock, place)
    clock.advance(days=1)
    stripe.fake.declined_transfers = 1  # Roost's Stripe balance is short
    await run_worker(app)
    [payout] = await read_payouts(client, place.as_host)
    assert payout["status"] == "FAILED"
    assert "insufficient available funds" in payout["failureReason"]
    assert payout["nextAttemptAt"] == (clock.now + timedelta(hours=1)).isoformat()

    clock.advance(minutes=59)
    await run_worker(app)
    assert stripe.fake.transfers == {}
    clock.advance(minutes=1)
    await run_worker(app)
    [payout] = await read_payouts(client, place.as_host)
    assert (payout["status"], payout["failureReason"]) == ("PAID", None)
    [row] = await payouts_in(database)
    # Stripe keeps a refusal for its key: the retry needs a key of its own.
    assert row.idempotency_key == f"payout-{row.id}-retry-1"
    assert len(stripe.fake.transfers) == 1


# Stripe's word on transfers.


async def test_a_transfer_whose_answer_was_lost_is_learnt_from_its_webhook(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    await ready_account(client, stripe, place)
    await completed_stay(app, client, clock, place)
    clock.advance(days=1)

    async def lost(method: str, path: str) -> None:
        if path == "/v1/transfers":
            raise ConnectionError("the worker died before the answer")

    stripe.fake.before_answer = lost  # the transfer is made and its webhook sent, then no answer
    await run_worker(app)
    stripe.fake.before_answer = None
    [transfer] = stripe.fake.transfers.values()
    [payout] = await read_payouts(client, place.as_host)
    assert payout["status"] == "PAID"  # by transfer.created
    clock.advance(hours=2)
    await run_worker(app)
    assert len(stripe.fake.transfers) == 1 and len(transfer_requests(stripe)) == 1
    [row] = await payouts_in(database)
    assert row.provider_transfer_id == transfer["id"]
    assert await sent_events(database) == 1


async def test_a_transfer_event_is_believed_only_for_the_hosts_account_and_amount(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    await completed_stay(app, client, clock, place)
    clock.advance(days=1)
    await run_worker(app)  # owed, PENDING: the host has no account yet
    [row] = await payouts_in(database)
    await connect(client, place.as_host)
    [account] = stripe.fake.accounts.values()
    base = {"id": "tr_forged", "object": "transfer", "currency": "eur",
            "metadata": {"payout_id": str(row.id)}}  # fmt: skip
    for wrong in ({"amount": 99_999, "destination": account["id"]},
                  {"amount": 22_310, "destination": "acct_someone_else"}):  # fmt: skip
        response = await stripe.fake.send(stripe.fake.event("transfer.created", base | wrong))
        assert response.status_code == 200
    assert [p["status"] for p in await read_payouts(client, place.as_host)] == ["PENDING"]
    right = {"amount": 22_310, "destination": account["id"]}
    await stripe.fake.send(stripe.fake.event("transfer.created", base | right))
    assert [p["status"] for p in await read_payouts(client, place.as_host)] == ["PAID"]


async def test_a_transfer_whose_key_stripe_forgot_is_found_rather_than_made_again(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    await ready_account(client, stripe, place)
    await completed_stay(app, client, clock, place)
    clock.advance(days=1)
    stripe.fake.endpoint = None  # its webhook lost too

    async def lost(method: str, path: str) -> None:
        if (method, path) == ("POST", "/v1/transfers"):
            raise ConnectionError("the answer never reaches the worker")

    stripe.fake.before_answer = lost
    await run_worker(app)
    stripe.fake.before_answer = None
    assert len(stripe.fake.transfers) == 1
    [payout] = await read_payouts(client, place.as_host)
    assert payout["status"] == "PENDING"  # whether it went through is unknown

    stripe.fake.outage(30, status=503)  # Stripe answers nothing for a day...
    for _ in range(24):
        clock.advance(hours=1)
        await run_worker(app)
    assert [p["status"] for p in await read_payouts(client, place.as_host)] == ["PENDING"]
    stripe.fake.forget_keys()  # ...by when it has forgotten the key
    clock.advance(hours=1)
    stripe.fake.outage(0)
    await run_worker(app)
    [transfer] = stripe.fake.transfers.values()
    [payout] = await read_payouts(client, place.as_host)
    assert payout["status"] == "PAID"
    [row] = await payouts_in(database)
    assert row.provider_transfer_id == transfer["id"]
    assert ("GET", "/v1/transfers") in [(m, p) for m, p, _ in stripe.fake.requests]


async def test_a_reversed_transfer_marks_its_payout_and_is_never_sent_again(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    await ready_account(client, stripe, place)
    await completed_stay(app, client, clock, place)
    clock.advance(days=1)
    await run_worker(app)
    [transfer] = stripe.fake.transfers.values()
    stripe.fake.reverse(transfer["id"])
    await stripe.fake.send(stripe.fake.events[-1])
    [payout] = await read_payouts(client, place.as_host)
    assert payout["status"] == "REVERSED"
    assert payout["failureReason"] == "Reversed at Stripe: 22310 of 22310"
    clock.advance(days=3)
    await run_worker(app)
    assert len(stripe.fake.transfers) == 1


# Reading payouts and earnings.


async def test_a_hosts_payouts_and_earnings_per_currency_without_a_query_per_payout(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    yen = await create(client, place.host, **priced_in("JPY", "12345", "3000"), instantBook=True,
                       minNights=1, maxGuests=4)  # fmt: skip
    yen_place = replace(place, listing_id=yen["id"])
    await connect(client, place.as_host)  # not onboarded yet: payouts wait
    for stay_place, start in ((place, 2), (yen_place, 2), (place, 6)):
        booking = await booked(client, stay_place, start, start + 2)
        await pay(client, stay_place, booking["id"])
    clock.advance(days=60)
    await run_worker(app)  # completed
    await run_worker(app)  # owed

    window = {"from": day(0), "to": day(90)}
    earned = (await gql(client, EARNINGS, window, headers=place.as_host))["data"]["earnings"]
    assert earned["byCurrency"] == [
        {"currency": "EUR", "paid": {"amount": "0.00"}, "pending": {"amount": "446.20"},
         "hostFees": {"amount": "13.80"}, "payouts": 2},
        {"currency": "JPY", "paid": {"amount": "0"}, "pending": {"amount": "26859"},
         "hostFees": {"amount": "831"}, "payouts": 1},
    ]  # fmt: skip

    [account] = stripe.fake.accounts.values()
    await stripe.fake.onboard(account["id"])
    await run_worker(app)
    earned = (await gql(client, EARNINGS, window, headers=place.as_host))["data"]["earnings"]
    assert [(e["paid"]["amount"], e["pending"]["amount"]) for e in earned["byCurrency"]] == [
        ("446.20", "0.00"), ("26859", "0"),
    ]  # fmt: skip
    nothing = {"from": day(90), "to": day(120)}
    assert (await gql(client, EARNINGS, nothing, headers=place.as_host))["data"]["earnings"][
        "byCurrency"
    ] == []

    with StatementCounter(database) as one_page:
        page = await gql(client, PAYOUTS, {"first": 1}, headers=place.as_host)
    with StatementCounter(database) as three:
        everything = await gql(client, PAYOUTS, {"first": 3}, headers=place.as_host)
    assert one_page.count == three.count, three.statements
    assert everything["data"]["payouts"]["totalCount"] == 3
    assert len(everything["data"]["payouts"]["edges"]) == 3
    after = page["data"]["payouts"]["pageInfo"]["endCursor"]
    rest = await gql(client, PAYOUTS, {"first": 5, "after": after}, headers=place.as_host)
    assert [e["node"]["id"] for e in rest["data"]["payouts"]["edges"]] == [
        e["node"]["id"] for e in everything["data"]["payouts"]["edges"][1:]
    ]
    # Another host sees none of them, not even by id.
    other = await a_place(client)
    assert await read_payouts(client, other.as_host) == []
    node = "query($id: ID!) { node(id: $id) { id } }"
    payout_id = page["data"]["payouts"]["edges"][0]["node"]["id"]
    assert (await gql(client, node, {"id": payout_id}, headers=other.as_host))["data"] == {
        "node": None
    }
    assert (await gql(client, node, {"id": payout_id}, headers=place.as_host))["data"] == {
        "node": {"id": payout_id}
    }


async def test_earnings_take_a_bounded_period(client: httpx.AsyncClient, stripe: Stripe) -> None:
    place = await a_place(client)
    for window, problem in [
        ({"from": day(10), "to": day(9)}, "must be on or after from"),
        ({"from": day(0), "to": day(366)}, "must be less than 366 days after from"),
    ]:
        body = await gql(client, EARNINGS, window, headers=place.as_host)
        assert body["errors"][0]["extensions"]["fields"] == {"to": problem}


async def test_a_worker_whose_lease_lapsed_mid_transfer_is_not_doubled_by_the_next(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    await ready_account(client, stripe, place)
    await completed_stay(app, client, clock, place)
    clock.advance(days=1)
    stripe.fake.endpoint = None
    held, release = asyncio.Event(), asyncio.Event()

    async def slow_answer(method: str, path: str) -> None:
        if path == "/v1/transfers" and not held.is_set():
            held.set()
            await release.wait()

    stripe.fake.before_answer = slow_answer
    slow = asyncio.create_task(run_worker(app))
    async with asyncio.timeout(30):
        await held.wait()
    clock.advance(minutes=3)  # the slow worker's lease lapses
    await run_worker(app)  # Stripe turns the same key away while its first request runs
    assert [p["status"] for p in await read_payouts(client, place.as_host)] == ["PENDING"]
    release.set()
    await slow  # its answer comes, and counts
    [transfer] = stripe.fake.transfers.values()
    [payout] = await read_payouts(client, place.as_host)
    assert payout["status"] == "PAID"
    clock.advance(hours=1)
    await run_worker(app)
    assert len(stripe.fake.transfers) == 1 and len(transfer_requests(stripe)) == 2
    [row] = await payouts_in(database)
    assert row.provider_transfer_id == transfer["id"]
    assert await sent_events(database) == 1


# Exactly once, with two workers and one killed mid-transfer.


def a_worker_process(app: Starlette, stripe: Stripe, now: datetime) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 (our own module, waited for in a thread)
        [sys.executable, "-m", "tests.payout_worker_child", app.state.settings.database_url,
         now.isoformat(), stripe.url],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


async def test_a_completed_stay_is_paid_once_with_two_workers_and_one_killed_mid_transfer(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    await ready_account(client, stripe, place)
    await completed_stay(app, client, clock, place)
    clock.advance(days=1)
    stripe.fake.endpoint = None  # no webhook to tell the other worker: only Stripe's key can

    held, release = asyncio.Event(), asyncio.Event()

    async def hold_the_first_answer(method: str, path: str) -> None:
        if path == "/v1/transfers" and not held.is_set():
            held.set()  # the transfer is made at Stripe; its answer waits
            await release.wait()

    stripe.fake.before_answer = hold_the_first_answer
    first = a_worker_process(app, stripe, clock.now)
    try:
        async with asyncio.timeout(60):
            await held.wait()
        # The second worker, meanwhile: the payout is the first's, under its lease.
        second = a_worker_process(app, stripe, clock.now)
        assert await asyncio.wait_for(asyncio.to_thread(second.wait), 60) == 0
        assert len(transfer_requests(stripe)) == 1
    finally:
        first.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait)
        release.set()
    [row] = await payouts_in(database)
    assert row.status == "SENDING"  # sent, and its answer died with its worker

    # The lease lapses; the other worker asks again under the same key, and Stripe answers
    # the transfer it already made.
    again = a_worker_process(app, stripe, clock.now + timedelta(minutes=3))
    assert await asyncio.wait_for(asyncio.to_thread(again.wait), 60) == 0
    [transfer] = stripe.fake.transfers.values()
    assert len(transfer_requests(stripe)) == 2
    [row] = await payouts_in(database)
    assert (row.status, row.provider_transfer_id, row.attempts) == ("PAID", transfer["id"], 2)
    assert transfer["amount"] == row.amount_minor == 22_310
    assert await sent_events(database) == 1


def transfer_requests(stripe: Stripe) -> list[dict]:
    return [
        p for method, path, p in stripe.fake.requests if (method, path) == ("POST", "/v1/transfers")
    ]
