"""Yen and dinars through Stripe, end to end: charged, partly refunded, each to the minor unit
(JPY has no decimals; KWD three, which Stripe takes in multiples of ten fils)."""

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from starlette.applications import Starlette

from app.wiring import build_worker
from db.database import Database
from gateways.paypal import amount_step as paypal_step
from gateways.stripe import amount_step as stripe_step
from services.payments import refundable
from tests.booking_helpers import CANCEL, a_place, read
from tests.helpers import FakeClock, gql
from tests.stripe_helpers import Stripe, ledger, paid_in_browser, stripe_serving


@pytest.fixture
async def stripe(app: Starlette) -> AsyncIterator[Stripe]:
    async with stripe_serving(app) as stripe:
        yield stripe


@pytest.mark.parametrize(
    ("currency", "nightly", "cleaning", "charged", "refunded"),
    [
        # Two nights and cleaning, plus 14% in fees and taxes; FIRM, cancelled 10 days ahead:
        # half the nights back.
        ("JPY", "12000", "3000", ("30780", 30_780), ("12000", 12_000)),
        ("KWD", "30.000", "5.000", ("74.100", 74_100), ("30.000", 30_000)),
        ("KWD", "25.250", "4.500", ("62.700", 62_700), ("25.250", 25_250)),
        # Half the nights is 25.035, which Stripe cannot move (tens of fils only): the guest
        # gets the 5 fils, never a refund refused.
        ("KWD", "25.035", "4.500", ("62.210", 62_210), ("25.040", 25_040)),
    ],
)
async def test_a_booking_in_yen_or_dinars_is_charged_and_partly_refunded_exactly(
    app: Starlette,
    client: httpx.AsyncClient,
    database: Database,
    clock: FakeClock,
    stripe: Stripe,
    currency: str,
    nightly: str,
    cleaning: str,
    charged: tuple[str, int],
    refunded: tuple[str, int],
) -> None:
    place = await a_place(
        client,
        nightlyPrice={"amount": nightly, "currency": currency},
        cleaningFee={"amount": cleaning, "currency": currency},
        cancellationPolicy="FIRM",
    )
    booking, intent = await paid_in_browser(client, stripe, place)
    assert (intent["amount"], intent["currency"]) == (charged[1], currency.lower())
    clock.advance(minutes=2)  # no webhook here: the worker asks Stripe
    await build_worker(app.state.settings, app.state.database, app.state.services).run_once()
    paid = await read(client, booking["id"], place.as_guest)
    assert (paid["status"], paid["payment"]["status"]) == ("CONFIRMED", "SUCCEEDED")
    assert paid["payment"]["amount"]["amount"] == charged[0]

    assert paid["refundPreview"]["amount"] == refunded[0]
    body = await gql(client, CANCEL, {"id": booking["id"]}, headers=place.as_guest)
    canceled = body["data"]["cancelBooking"]
    assert canceled["refundAmount"]["amount"] == refunded[0]
    assert canceled["payment"]["refundedAmount"]["amount"] == refunded[0]
    assert canceled["payment"]["status"] == "PARTIALLY_REFUNDED"
    [refund] = stripe.fake.refunds.values()
    assert (refund["payment_intent"], refund["amount"]) == (intent["id"], refunded[1])
    assert intent["amount_received"] == charged[1]
    assert [kind for kind, _, _ in await ledger(database)] == ["AUTHORIZE", "CAPTURE", "REFUND"]


@pytest.mark.parametrize(
    ("amount", "balance", "step", "expected"),
    [
        (25_035, 62_210, 10, 25_040),  # up to the provider's step, in the guest's favour
        (25_030, 62_210, 10, 25_030),
        (62_205, 62_210, 10, 62_210),
        (99_999, 62_210, 10, 62_210),  # never past what is left
        (150, 1_000, 100, 200),  # whole shillings, forints
        (0, 1_000, 100, 0),
        (-5, 1_000, 1, 0),
    ],
)
def test_a_refund_is_what_the_provider_can_move_never_more_than_is_left(
    amount: int, balance: int, step: int, expected: int
) -> None:
    assert refundable(amount, balance=balance, step=step) == expected


@pytest.mark.parametrize(
    ("step_of", "currency", "step"),
    [
        (stripe_step, "KWD", 10),
        (stripe_step, "BHD", 10),
        (stripe_step, "JPY", 1),
        (stripe_step, "EUR", 1),
        (stripe_step, "ISK", 1),  # two decimals at Stripe, none of ours: any whole krona
        (paypal_step, "HUF", 100),  # whole forints only at PayPal
        (paypal_step, "TWD", 100),
        (paypal_step, "JPY", 1),
        (paypal_step, "EUR", 1),
    ],
)
def test_each_provider_says_the_smallest_amount_it_moves(
    step_of: Callable[[str], int], currency: str, step: int
) -> None:
    assert step_of(currency) == step
