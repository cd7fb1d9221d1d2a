"""Admins and payouts: every host's payouts searched, a failed one sent again (once), and the
providers' event log read without the payloads."""

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from db.database import Database
from tests.accounts_helpers import error_code
from tests.admin_helpers import audited
from tests.booking_helpers import a_place, booked, pay
from tests.helpers import FakeClock, gql
from tests.payout_helpers import (
    payout_stripe,
    payouts_in,
    read_payouts,
    ready_account,
    run_worker,
)
from tests.receipt_helpers import an_admin
from tests.stripe_helpers import Stripe

ADMIN_PAYOUTS = """
query($status: PayoutStatus, $host: ID, $from: Date, $to: Date, $first: Int, $after: String) {
  adminPayouts(status: $status, hostId: $host, from: $from, to: $to, first: $first,
               after: $after) {
    edges { node { id status earnedOn } }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}
"""
RETRY = "mutation($id: ID!) { retryPayout(id: $id) { id status nextAttemptAt } }"
EVENTS = """
query($provider: PaymentProvider, $payment: ID, $payout: ID, $first: Int, $after: String) {
  providerEvents(provider: $provider, paymentId: $payment, payoutId: $payout, first: $first,
                 after: $after) {
    edges { node { id provider eventId type receivedAt processedAt outcome } }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}
"""
ME = "{ me { id } }"


@pytest.fixture
async def stripe(app: Starlette, database: Database, clock: FakeClock) -> AsyncIterator[Stripe]:
    async with payout_stripe(app, clock) as stripe:
        yield stripe


async def payout_ids(client: httpx.AsyncClient, admin: dict, **filters: object) -> list[str]:
    body = await gql(client, ADMIN_PAYOUTS, filters, headers=admin)
    assert "errors" not in body, body
    return [edge["node"]["id"] for edge in body["data"]["adminPayouts"]["edges"]]


async def test_admins_search_payouts_retry_a_failed_one_and_read_the_event_log(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock, stripe: Stripe
) -> None:
    admin = await an_admin(client, database)
    lisbon, porto = await a_place(client), await a_place(client)
    await ready_account(client, stripe, lisbon)
    await ready_account(client, stripe, porto)
    await pay(client, lisbon, (await booked(client, lisbon, 10, 12))["id"])
    await pay(client, porto, (await booked(client, porto, 10, 13))["id"])
    clock.advance(days=13)
    await run_worker(app)  # both stays completed
    clock.advance(days=1)
    stripe.fake.declined_transfers = 1  # the first transfer asked for is refused
    await run_worker(app)
    payouts = {p["status"]: p for p in [
        *(await read_payouts(client, lisbon.as_host)),
        *(await read_payouts(client, porto.as_host)),
    ]}  # fmt: skip
    failed, paid = payouts["FAILED"], payouts["PAID"]

    assert sorted(await payout_ids(client, admin)) == sorted([failed["id"], paid["id"]])
    assert await payout_ids(client, admin, status="FAILED") == [failed["id"]]
    host = (await gql(client, ME, headers=lisbon.as_host))["data"]["me"]["id"]
    lisbon_payout = (await read_payouts(client, lisbon.as_host))[0]["id"]
    assert await payout_ids(client, admin, host=host) == [lisbon_payout]
    earned = payouts["FAILED"]["earnedOn"]
    assert failed["id"] in await payout_ids(client, admin, **{"from": earned, "to": earned})
    assert await payout_ids(client, admin, **{"from": "2030-01-01"}) == []
    page = await gql(client, ADMIN_PAYOUTS, {"first": 1}, headers=admin)
    assert page["data"]["adminPayouts"]["totalCount"] == 2
    after = page["data"]["adminPayouts"]["pageInfo"]["endCursor"]
    assert len(await payout_ids(client, admin, first=1, after=after)) == 1
    bad = await gql(
        client, ADMIN_PAYOUTS, {"from": "2030-01-02", "to": "2030-01-01"}, headers=admin
    )
    assert error_code(bad) == "BAD_USER_INPUT"
    assert error_code(await gql(client, ADMIN_PAYOUTS, {"first": 101}, headers=admin)) == (
        "BAD_USER_INPUT"
    )

    # A paid payout is not retried; a failed one is, at once, under its new key, once.
    assert error_code(await gql(client, RETRY, {"id": paid["id"]}, headers=admin)) == "CONFLICT"
    for party in (lisbon.as_host, lisbon.as_guest):
        assert error_code(await gql(client, RETRY, {"id": failed["id"]}, headers=party)) == (
            "FORBIDDEN"
        )
    retried = await gql(client, RETRY, {"id": failed["id"]}, headers=admin)
    assert retried["data"]["retryPayout"]["status"] == "PENDING", retried
    assert retried["data"]["retryPayout"]["nextAttemptAt"] == clock.now.isoformat()
    again = await gql(client, RETRY, {"id": failed["id"]}, headers=admin)
    assert error_code(again) == "CONFLICT"
    await run_worker(app)
    await run_worker(app)
    assert sorted(p.status for p in await payouts_in(database)) == ["PAID", "PAID"]
    assert len(stripe.fake.transfers) == 2  # one each: nobody paid twice
    failed_row = next(p for p in await payouts_in(database) if p.declines == 1)
    assert failed_row.idempotency_key == f"payout-{failed_row.id}-retry-1"
    [entry] = await audited(client, admin, "payout.retry")
    assert entry["subjectId"] == failed["id"]
    assert (entry["before"]["status"], entry["after"]["status"]) == ("FAILED", "PENDING")

    # The event log: what Stripe sent, found by payout, never with its payload.
    body = await gql(client, EVENTS, {"payout": failed["id"]}, headers=admin)
    assert "errors" not in body, body
    [event] = [edge["node"] for edge in body["data"]["providerEvents"]["edges"]]
    assert (event["type"], event["provider"], event["outcome"]) == (
        "transfer.created", "STRIPE", "APPLIED"
    )  # fmt: skip
    assert event["processedAt"] is not None
    everything = await gql(client, EVENTS, {"provider": "STRIPE", "first": 100}, headers=admin)
    all_types = [e["node"]["type"] for e in everything["data"]["providerEvents"]["edges"]]
    assert all_types.count("transfer.created") == 2 and "account.updated" in all_types
    assert everything["data"]["providerEvents"]["totalCount"] == len(all_types)
    assert await gql(client, EVENTS, {"provider": "PAYPAL"}, headers=admin) == {
        "data": {"providerEvents": {"edges": [], "pageInfo": {"hasNextPage": False,
                 "endCursor": None}, "totalCount": 0}}
    }  # fmt: skip
    first = await gql(client, EVENTS, {"first": 1}, headers=admin)
    cursor = first["data"]["providerEvents"]["pageInfo"]["endCursor"]
    second = await gql(client, EVENTS, {"first": 1, "after": cursor}, headers=admin)
    assert (
        second["data"]["providerEvents"]["edges"][0]["node"]["id"]
        != (first["data"]["providerEvents"]["edges"][0]["node"]["id"])
    )
    assert error_code(await gql(client, EVENTS, headers=lisbon.as_host)) == "FORBIDDEN"
