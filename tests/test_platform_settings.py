"""Platform settings admins change while Roost runs: fees, taxes, windows, the payout delay and
the moderation switch; each change audited and in force at the next quote, booking and payout,
on every server, without a restart."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest
from starlette.applications import Starlette

from app.http import create_app
from db.database import Database
from tests.accounts_helpers import error_code
from tests.booking_helpers import a_place, booked, day
from tests.helpers import FakeClock, gql, http_client, running
from tests.payout_helpers import (
    completed_stay,
    payout_stripe,
    read_payouts,
    ready_account,
    run_worker,
)
from tests.receipt_helpers import an_admin
from tests.stripe_helpers import Stripe

FIELDS = """
  guestServiceFeePercent hostFeePercent occupancyTaxPercent
  taxPercentByCountry { country percent }
  paymentWindowMinutes hostResponseHours payoutDelayHours moderationEnabled changed
"""
SETTINGS = f"{{ platformSettings {{ {FIELDS} }} }}"
UPDATE = f"""
mutation($input: UpdatePlatformSettingsInput!) {{
  updatePlatformSettings(input: $input) {{ {FIELDS} }}
}}
"""
AUDIT = """
{ auditLog(first: 20, action: "settings.update") {
    edges { node { action before after actor { id } } } } }
"""
QUOTE = """
query($id: ID!, $in: Date!, $out: Date!) {
  quote(listingId: $id, checkIn: $in, checkOut: $out, guests: 2) {
    serviceFee { amount } taxes { amount } total { amount }
  }
}
"""


async def change(client: httpx.AsyncClient, admin: dict[str, str], **values: object) -> dict:
    body = await gql(client, UPDATE, {"input": values}, headers=admin)
    assert "errors" not in body, body
    return body["data"]["updatePlatformSettings"]


async def test_admins_read_and_change_the_settings_each_change_audited(
    client: httpx.AsyncClient, database: Database
) -> None:
    admin = await an_admin(client, database)
    defaults = (await gql(client, SETTINGS, headers=admin))["data"]["platformSettings"]
    assert defaults == {
        "guestServiceFeePercent": "14",
        "hostFeePercent": "3",
        "occupancyTaxPercent": "0",
        "taxPercentByCountry": [],
        "paymentWindowMinutes": 15,
        "hostResponseHours": 24,
        "payoutDelayHours": 24.0,
        "moderationEnabled": False,
        "changed": [],
    }

    changed = await change(
        client,
        admin,
        guestServiceFeePercent="12.5",
        taxPercentByCountry=[
            {"country": "pt", "percent": "6.5"},
            {"country": "FR", "percent": "5"},
        ],
        paymentWindowMinutes=30,
        moderationEnabled=True,
    )
    assert changed["guestServiceFeePercent"] == "12.50"
    assert changed["taxPercentByCountry"] == [
        {"country": "FR", "percent": "5.00"},
        {"country": "PT", "percent": "6.50"},
    ]
    assert (changed["paymentWindowMinutes"], changed["moderationEnabled"]) == (30, True)
    assert changed["hostFeePercent"] == "3"  # untouched: still the default
    assert sorted(changed["changed"]) == [
        "guestServiceFeePercent",
        "moderationEnabled",
        "paymentWindowMinutes",
        "taxPercentByCountry",
    ]
    assert (await gql(client, SETTINGS, headers=admin))["data"]["platformSettings"] == changed

    # The same values again change nothing, and are not recorded; null is the default again.
    await change(client, admin, paymentWindowMinutes=30)
    back = await change(client, admin, guestServiceFeePercent=None)
    assert back["guestServiceFeePercent"] == "14"
    assert "guestServiceFeePercent" not in back["changed"]

    log = (await gql(client, AUDIT, headers=admin))["data"]["auditLog"]["edges"]
    assert [edge["node"]["before"] for edge in log] == [
        {"guest_service_fee_percent": "12.50"},
        {
            "guest_service_fee_percent": "14",
            "moderation_enabled": False,
            "payment_window_minutes": 15,
            "tax_percent_by_country": {},
        },
    ]
    assert log[1]["node"]["after"] == {
        "guest_service_fee_percent": "12.50",
        "moderation_enabled": True,
        "payment_window_minutes": 30,
        "tax_percent_by_country": {"FR": "5.00", "PT": "6.50"},
    }
    assert log[0]["node"]["after"] == {"guest_service_fee_percent": "14"}


@pytest.mark.parametrize(
    ("values", "fields"),
    [
        ({"guestServiceFeePercent": "100.01"}, {"guestServiceFeePercent"}),
        ({"hostFeePercent": "-1"}, {"hostFeePercent"}),
        ({"occupancyTaxPercent": "1.005"}, {"occupancyTaxPercent"}),
        (
            {"taxPercentByCountry": [{"country": "XX", "percent": "1"}]},
            {"taxPercentByCountry.XX"},
        ),
        (
            {
                "taxPercentByCountry": [
                    {"country": "PT", "percent": "1"},
                    {"country": "pt", "percent": "2"},
                ]
            },
            {"taxPercentByCountry.PT"},
        ),
        (
            {"taxPercentByCountry": [{"country": "PT", "percent": "1"}] * 251},
            {"taxPercentByCountry"},
        ),
        ({"paymentWindowMinutes": 0}, {"paymentWindowMinutes"}),
        ({"paymentWindowMinutes": 1441}, {"paymentWindowMinutes"}),
        ({"hostResponseHours": 0}, {"hostResponseHours"}),
        ({"hostResponseHours": 337}, {"hostResponseHours"}),
        ({"payoutDelayHours": -1}, {"payoutDelayHours"}),
        ({"payoutDelayHours": 1441}, {"payoutDelayHours"}),
        (
            {"guestServiceFeePercent": "101", "paymentWindowMinutes": 0},
            {"guestServiceFeePercent", "paymentWindowMinutes"},
        ),
    ],
)
async def test_settings_out_of_bounds_are_refused_field_by_field(
    client: httpx.AsyncClient, database: Database, values: dict, fields: set[str]
) -> None:
    admin = await an_admin(client, database)
    body = await gql(client, UPDATE, {"input": values}, headers=admin)
    assert error_code(body) == "BAD_USER_INPUT", body
    assert set(body["errors"][0]["extensions"]["fields"]) == fields
    settings = (await gql(client, SETTINGS, headers=admin))["data"]["platformSettings"]
    assert settings["changed"] == []
    assert (await gql(client, AUDIT, headers=admin))["data"]["auditLog"]["edges"] == []


async def test_the_next_quote_and_booking_use_the_changed_fees_taxes_and_hold(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    admin = await an_admin(client, database)
    place = await a_place(client)  # Lisbon: 2 nights of 100 EUR + 30 cleaning = 230
    variables = {"id": place.listing_id, "in": day(10), "out": day(12)}
    before = (await gql(client, QUOTE, variables))["data"]["quote"]
    assert (before["serviceFee"], before["taxes"]) == ({"amount": "32.20"}, {"amount": "0.00"})

    await change(
        client,
        admin,
        guestServiceFeePercent="10",
        occupancyTaxPercent="1",
        taxPercentByCountry=[{"country": "PT", "percent": "6.5"}],
        paymentWindowMinutes=45,
    )
    after = (await gql(client, QUOTE, variables))["data"]["quote"]
    # 10% of 230 = 23.00; Portugal's own 6.5% (not the platform's 1%) = 14.95.
    assert after == {
        "serviceFee": {"amount": "23.00"},
        "taxes": {"amount": "14.95"},
        "total": {"amount": "267.95"},
    }
    booking = await booked(client, place, 10, 12)
    assert booking["price"]["serviceFee"] == {"amount": "23.00"}
    assert booking["price"]["taxes"] == {"amount": "14.95"}
    assert datetime.fromisoformat(booking["expiresAt"]) == clock() + timedelta(minutes=45)


async def test_the_worker_pays_hosts_with_the_changed_fee_and_delay(
    app: Starlette, client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    admin = await an_admin(client, database)
    async with payout_stripe(app, clock) as stripe:
        await _paid_sooner_with_a_bigger_fee(app, client, clock, stripe, admin)


async def _paid_sooner_with_a_bigger_fee(
    app: Starlette,
    client: httpx.AsyncClient,
    clock: FakeClock,
    stripe: Stripe,
    admin: dict[str, str],
) -> None:
    place = await a_place(client)
    await ready_account(client, stripe, place)
    await change(client, admin, hostFeePercent="10", payoutDelayHours=2)
    await completed_stay(app, client, clock, place)  # an hour after check-out
    assert await read_payouts(client, place.as_host) == []
    clock.advance(hours=1)  # two hours after check-out, not the default day
    await run_worker(app)
    [payout] = await read_payouts(client, place.as_host)
    # 230.00 of nights and cleaning, 10% of it kept: 207.00 sent.
    assert payout["hostFee"] == {"amount": "23.00"}
    assert payout["amount"] == {"amount": "207.00", "currency": "EUR"}


@pytest.fixture
async def second_server(app: Starlette, database: Database) -> AsyncIterator[Starlette]:
    """Another server process's app on the same database and Redis."""
    if app.state.redis is None:
        pytest.skip("REDIS_URL is not set: servers share changes through Redis")
    async with running(create_app(app.state.settings)) as other:
        yield other


async def test_another_server_uses_a_change_at_once(
    app: Starlette, client: httpx.AsyncClient, database: Database, second_server: Starlette
) -> None:
    admin = await an_admin(client, database)
    place = await a_place(client)
    variables = {"id": place.listing_id, "in": day(10), "out": day(12)}
    async with http_client(second_server) as other:
        # Its copy of the settings is read, and kept (for a minute, unless told of a change).
        quoted = (await gql(other, QUOTE, variables))["data"]["quote"]
        assert quoted["serviceFee"] == {"amount": "32.20"}
        await change(client, admin, guestServiceFeePercent="5")
        deadline = time.monotonic() + 5
        while True:
            quoted = (await gql(other, QUOTE, variables))["data"]["quote"]
            if quoted["serviceFee"] == {"amount": "11.50"} or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert quoted["serviceFee"] == {"amount": "11.50"}


async def test_only_admins_read_or_change_the_settings(
    client: httpx.AsyncClient, database: Database
) -> None:
    place = await a_place(client)
    for headers in (place.as_guest, place.as_host):
        assert error_code(await gql(client, SETTINGS, headers=headers)) == "FORBIDDEN"
        body = await gql(client, UPDATE, {"input": {"hostFeePercent": "0"}}, headers=headers)
        assert error_code(body) == "FORBIDDEN"
    assert error_code(await gql(client, SETTINGS)) == "UNAUTHENTICATED"
