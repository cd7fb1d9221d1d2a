"""Host payouts in tests: the fake Stripe with its webhooks sent to the app, a host's account
connected and onboarded, stays taken to COMPLETED, and the worker run at the test's time."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from pydantic import SecretStr
from sqlalchemy import select
from starlette.applications import Starlette

from app.wiring import build_worker
from db.database import Database
from db.models import Payout
from tests.booking_helpers import Place, booked, pay
from tests.fakes.stripe_api import WebhookEndpoint
from tests.helpers import FakeClock, gql
from tests.stripe_helpers import Stripe, stripe_serving

WEBHOOK_SECRET = "whsec_roost_payouts"
CONNECT = """
mutation($ret: String!, $refresh: String!) {
  connectPayoutAccount(returnUrl: $ret, refreshUrl: $refresh) {
    url expiresAt account { status ready readyAt }
  }
}
"""
RETURN_URL = "https://roost.example/host/payouts/done"
REFRESH_URL = "https://roost.example/host/payouts/again"
ACCOUNT = "{ payoutAccount { status ready readyAt } }"
PAYOUT_FIELDS = """
  id status amount { amount currency } hostFee { amount } refunds { amount } earnedOn
  nextAttemptAt failureReason paidAt booking { id checkOut }
"""
PAYOUTS = f"""
query($first: Int, $after: String) {{
  payouts(first: $first, after: $after) {{
    totalCount edges {{ cursor node {{ {PAYOUT_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""
EARNINGS = """
query($from: Date!, $to: Date!) {
  earnings(from: $from, to: $to) {
    from to byCurrency { currency paid { amount } pending { amount } hostFees { amount } payouts }
  }
}
"""


@asynccontextmanager
async def payout_stripe(app: Starlette, clock: FakeClock) -> AsyncIterator[Stripe]:
    """The fake Stripe as the app's STRIPE gateway, its signed webhooks posted to the app."""
    before = app.state.settings
    app.state.settings = before.model_copy(
        update={"stripe_webhook_secret": [SecretStr(WEBHOOK_SECRET)]}
    )
    try:
        async with stripe_serving(app) as stripe:
            stripe.fake.endpoint = WebhookEndpoint(
                "http://testserver/webhooks/stripe", WEBHOOK_SECRET, httpx.ASGITransport(app=app)
            )
            stripe.fake.clock = lambda: clock().timestamp()
            yield stripe
    finally:
        app.state.settings = before


async def connect(client: httpx.AsyncClient, token_headers: dict[str, str]) -> dict:
    body = await gql(
        client, CONNECT, {"ret": RETURN_URL, "refresh": REFRESH_URL}, headers=token_headers
    )
    assert "errors" not in body, body
    return body["data"]["connectPayoutAccount"]


async def ready_account(client: httpx.AsyncClient, stripe: Stripe, place: Place) -> str:
    """The place's host connects and finishes Stripe's onboarding; answers the account id."""
    await connect(client, place.as_host)
    account = list(stripe.fake.accounts.values())[-1]  # the newest
    await stripe.fake.onboard(account["id"])
    return str(account["id"])


async def run_worker(app: Starlette) -> None:
    await build_worker(app.state.settings, app.state.database, app.state.services).run_once()


async def completed_stay(
    app: Starlette, client: httpx.AsyncClient, clock: FakeClock, place: Place, nights: int = 2
) -> dict:
    """A stay 10 days ahead, paid with TEST, then lived: the clock is moved past its check-out
    (11:00 in Lisbon) and a worker completes it. Answers the booking."""
    booking = await booked(client, place, 10, 10 + nights)
    await pay(client, place, booking["id"])
    clock.advance(days=10 + nights)  # noon of the check-out day: an hour after check-out
    await run_worker(app)
    return booking


async def payouts_in(database: Database) -> list[Payout]:
    async with database.read_session() as session:
        return list((await session.scalars(select(Payout).order_by(Payout.id))).all())


async def read_payouts(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict]:
    body = await gql(client, PAYOUTS, {"first": 20}, headers=headers)
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["payouts"]["edges"]]
