"""Stripe through HTTP: the app's StripeGateway (the official SDK) pointed at a local fake of
Stripe's API (tests/fakes/stripe_api.py); the guest's browser confirms as Stripe.js would."""

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import httpx
import pytest
from starlette.applications import Starlette

from gateways.payments import CaptureMethod, PaymentDeclined, ProviderUnavailable
from gateways.stripe import StripeGateway
from services.payments import Gateways
from tests.booking_helpers import START_PAYMENT, Place, a_place, booked
from tests.fakes.stripe_api import SECRET_KEY, FakeStripe, confirm_in_browser
from tests.helpers import FakeClock, gql, serving


@dataclass
class Stripe:
    fake: FakeStripe
    url: str

    def intent(self, client_secret: str) -> dict:
        return self.fake.intents[client_secret.split("_secret_")[0]]


@pytest.fixture
async def stripe(app: Starlette) -> AsyncIterator[Stripe]:
    """The fake on a loopback port, and the app's STRIPE gateway pointed at it."""
    fake = FakeStripe()
    before = app.state.services
    async with serving(fake.app()) as url:
        gateway = StripeGateway(
            api_key=SECRET_KEY, api_base=url, timeout_seconds=2, max_network_retries=0
        )
        gateways = Gateways({**before.payment_gateways.by_provider, "STRIPE": gateway})
        app.state.services = replace(before, payment_gateways=gateways)
        try:
            yield Stripe(fake, url)
        finally:
            app.state.services = replace(
                app.state.services, payment_gateways=before.payment_gateways
            )


async def start(client: httpx.AsyncClient, place: Place, booking_id: str) -> dict:
    body = await gql(
        client, START_PAYMENT, {"id": booking_id, "provider": "STRIPE"}, headers=place.as_guest
    )
    assert "errors" not in body, body
    return body["data"]["startPayment"]


def priced_in(currency: str, nightly: str, cleaning: str) -> dict[str, object]:
    return {
        "nightlyPrice": {"amount": nightly, "currency": currency},
        "cleaningFee": {"amount": cleaning, "currency": currency},
    }


# Starting a payment.


async def test_start_payment_creates_an_intent_for_the_booking_and_answers_its_secret(
    client: httpx.AsyncClient, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)  # 262.20 EUR
    started = await start(client, place, booking["id"])
    assert started["payment"]["provider"] == "STRIPE"
    assert started["payment"]["amount"] == {"amount": "262.20", "currency": "EUR"}
    intent = stripe.intent(started["clientSecret"])
    assert intent["client_secret"] == started["clientSecret"]
    assert (intent["amount"], intent["currency"]) == (26_220, "eur")
    assert intent["capture_method"] == "automatic"  # instant book
    assert intent["status"] == "requires_payment_method"
    assert set(intent["metadata"]) == {"booking_id", "payment_id"}
    # Asked again, the same intent: the same idempotency key, replayed by Stripe.
    again = await start(client, place, booking["id"])
    assert again == started
    assert len(stripe.fake.intents) == 1
    creates = [r for r in stripe.fake.requests if r[:2] == ("POST", "/v1/payment_intents")]
    assert len(creates) == 2


async def test_a_request_to_book_is_only_held_on_the_card(
    client: httpx.AsyncClient, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client, instantBook=False)
    booking = await booked(client, place, 10, 12)
    started = await start(client, place, booking["id"])
    assert stripe.intent(started["clientSecret"])["capture_method"] == "manual"
    confirmed = await confirm_in_browser(stripe.url, started["clientSecret"])
    assert confirmed.json()["status"] == "requires_capture"


async def test_yen_are_sent_as_they_are(
    client: httpx.AsyncClient, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client, **priced_in("JPY", "12000", "3000"))
    booking = await booked(client, place, 10, 12)  # 27,000 + 14% = 30,780 yen
    started = await start(client, place, booking["id"])
    assert started["payment"]["amount"] == {"amount": "30780", "currency": "JPY"}
    intent = stripe.intent(started["clientSecret"])
    assert (intent["amount"], intent["currency"]) == (30_780, "jpy")


async def test_dinars_are_sent_in_fils_a_multiple_of_ten(
    client: httpx.AsyncClient, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client, **priced_in("KWD", "30.000", "5.000"))
    booking = await booked(client, place, 10, 12)  # 65.000 + 14% = 74.100 KWD
    started = await start(client, place, booking["id"])
    assert started["payment"]["amount"] == {"amount": "74.100", "currency": "KWD"}
    intent = stripe.intent(started["clientSecret"])
    assert (intent["amount"], intent["currency"]) == (74_100, "kwd")


async def test_dinars_stripe_cannot_take_exactly_are_refused_not_rounded(
    client: httpx.AsyncClient, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client, **priced_in("KWD", "30.005", "5.000"))
    booking = await booked(client, place, 10, 12)  # 65.010 + 9.101 = 74.111 KWD
    body = await gql(
        client, START_PAYMENT, {"id": booking["id"], "provider": "STRIPE"}, headers=place.as_guest
    )
    assert body["errors"][0]["extensions"]["code"] == "PAYMENT_FAILED"
    assert "multiples of 0.010" in body["errors"][0]["message"]
    assert stripe.fake.intents == {}


async def test_stripe_out_of_reach_is_service_unavailable(
    client: httpx.AsyncClient, clock: FakeClock, stripe: Stripe
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    stripe.fake.outage(1, status=503)
    response = await client.post(
        "/graphql",
        json={"query": START_PAYMENT, "variables": {"id": booking["id"], "provider": "STRIPE"}},
        headers=place.as_guest,
    )
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert (await start(client, place, booking["id"]))["clientSecret"]


# The gateway's answers: declines, and no answer.


async def a_gateway(stripe: Stripe, **options: object) -> StripeGateway:
    values: dict = {"api_key": SECRET_KEY, "api_base": stripe.url, "max_network_retries": 0}
    return StripeGateway(**(values | options))


async def paid_intent(gateway: StripeGateway, stripe: Stripe, capture: CaptureMethod) -> str:
    intent = await gateway.create(
        amount_minor=10_000, currency="EUR", description="d", idempotency_key=secrets.token_hex(8),
        capture=capture, metadata={"booking_id": "1", "payment_id": "1"},
    )  # fmt: skip
    assert intent.client_secret is not None
    assert (await confirm_in_browser(stripe.url, intent.client_secret)).status_code == 200
    return intent.reference


async def test_capture_release_and_refunds_move_the_intent(stripe: Stripe) -> None:
    gateway = await a_gateway(stripe)
    held = await paid_intent(gateway, stripe, "manual")
    charge = await gateway.capture(held, amount_minor=10_000, idempotency_key="cap")
    assert charge == stripe.fake.intents[held]["latest_charge"]
    assert stripe.fake.intents[held]["status"] == "succeeded"
    first = await gateway.refund(held, amount_minor=2_500, idempotency_key="re-1")
    assert await gateway.refund(held, amount_minor=2_500, idempotency_key="re-1") == first
    await gateway.refund(held, amount_minor=7_500, idempotency_key="re-2")
    with pytest.raises(PaymentDeclined, match="greater than unrefunded"):
        await gateway.refund(held, amount_minor=1, idempotency_key="re-3")
    assert sum(refund["amount"] for refund in stripe.fake.refunds.values()) == 10_000

    released = await paid_intent(gateway, stripe, "manual")
    assert await gateway.release(released, idempotency_key="rel") == released
    assert stripe.fake.intents[released]["status"] == "canceled"
    with pytest.raises(PaymentDeclined, match="status of canceled"):
        await gateway.capture(released, amount_minor=10_000, idempotency_key="cap-2")


async def test_a_longer_stay_cannot_be_charged_to_a_stripe_payment(stripe: Stripe) -> None:
    gateway = await a_gateway(stripe)
    paid = await paid_intent(gateway, stripe, "automatic")
    with pytest.raises(PaymentDeclined, match="cannot be charged more"):
        await gateway.charge(paid, amount_minor=500, currency="EUR", idempotency_key="more")
    assert len(stripe.fake.intents) == 1


async def test_errors_at_stripe_timeouts_and_a_bad_key_are_no_answer(stripe: Stripe) -> None:
    gateway = await a_gateway(stripe, timeout_seconds=0.3)
    paid = await paid_intent(gateway, stripe, "automatic")
    stripe.fake.outage(1, status=500)
    with pytest.raises(ProviderUnavailable):
        await gateway.refund(paid, amount_minor=100, idempotency_key="re")
    stripe.fake.outage(1, hang=True)
    with pytest.raises(ProviderUnavailable):
        await gateway.refund(paid, amount_minor=100, idempotency_key="re")
    stripe.fake.outage(0)
    with pytest.raises(ProviderUnavailable):
        await (await a_gateway(stripe, api_key="sk_test_wrong")).retrieve(paid)
    assert stripe.fake.refunds == {}  # nothing moved: asked again, the same key refunds once
    await gateway.refund(paid, amount_minor=100, idempotency_key="re")
    await gateway.refund(paid, amount_minor=100, idempotency_key="re")
    assert [refund["amount"] for refund in stripe.fake.refunds.values()] == [100]
