"""Stripe's webhooks through HTTP: the fake of Stripe's API (tests/fakes/stripe_api.py) signs
and posts its events to POST /webhooks/stripe, as Stripe does; the app applies each once."""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from starlette.applications import Starlette

from app.http import create_app
from app.wiring import build_worker
from db.database import Database
from db.models import OutboxEvent, ProviderEvent
from tests.booking_helpers import ACCEPT, a_place, booked, read
from tests.fakes.stripe_api import WebhookEndpoint, confirm_in_browser, stripe_signature
from tests.helpers import FakeClock, gql, http_client, make_settings, running
from tests.relay import Relay
from tests.stripe_helpers import Stripe, ledger, paid_in_browser, start, stripe_serving

OLD_SECRET = "whsec_roost_old"
SECRET = "whsec_roost_fake"
URL = "http://testserver/webhooks/stripe"


@pytest.fixture
def secrets(app: Starlette) -> Iterator[None]:
    """The endpoint's secrets: the one in use, and one being rolled out (second in the list)."""
    before = app.state.settings
    app.state.settings = before.model_copy(
        update={"stripe_webhook_secret": [SecretStr(OLD_SECRET), SecretStr(SECRET)]}
    )
    yield
    app.state.settings = before


@pytest.fixture
async def hooked(
    app: Starlette, database: Database, clock: FakeClock, secrets: None
) -> AsyncIterator[Stripe]:
    """The fake sends its events to the app, signed with the second secret, at the app's time."""
    async with stripe_serving(app) as stripe:
        stripe.fake.endpoint = WebhookEndpoint(URL, SECRET, httpx.ASGITransport(app=app))
        stripe.fake.clock = lambda: clock().timestamp()
        yield stripe


async def count(database: Database, model: type, *where: object) -> int:
    async with database.read_session() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


def confirmed_events() -> object:
    return OutboxEvent.kind == "BookingConfirmed"


async def test_a_signed_succeeded_event_confirms_an_instant_booking_without_the_worker(
    app: Starlette, client: httpx.AsyncClient, database: Database, hooked: Stripe
) -> None:
    place = await a_place(client)
    booking, intent = await paid_in_browser(client, hooked, place)
    assert [e["type"] for e in hooked.fake.events] == ["payment_intent.succeeded"]
    assert hooked.fake.deliveries == [(hooked.fake.events[0]["id"], 200)]
    confirmed = await read(client, booking["id"], place.as_guest)
    assert (confirmed["status"], confirmed["payment"]["status"]) == ("CONFIRMED", "SUCCEEDED")
    assert await ledger(database) == [
        ("AUTHORIZE", "SUCCEEDED", intent["id"]),
        ("CAPTURE", "SUCCEEDED", intent["latest_charge"]),
    ]
    assert await count(database, ProviderEvent, ProviderEvent.processed_at.is_not(None)) == 1
    # No longer waiting: the worker's check, there for lost webhooks, asks Stripe nothing.
    app.state.services.clock.advance(minutes=2)
    await build_worker(app.state.settings, app.state.database, app.state.services).run_once()
    assert not any(method == "GET" for method, _, _ in hooked.fake.requests)


async def test_a_replayed_event_applies_once_even_ten_deliveries_five_at_a_time(
    client: httpx.AsyncClient, database: Database, hooked: Stripe
) -> None:
    place = await a_place(client)
    endpoint, hooked.fake.endpoint = hooked.fake.endpoint, None  # delivered below, by the test
    booking, intent = await paid_in_browser(client, hooked, place)
    hooked.fake.endpoint = endpoint
    [event] = hooked.fake.events
    outcomes = []
    for _ in range(2):
        answers = await asyncio.gather(*(hooked.fake.send(event) for _ in range(5)))
        assert [answer.status_code for answer in answers] == [200] * 5
        outcomes += [answer.json()["outcome"] for answer in answers]
    assert sorted(outcomes) == ["APPLIED"] + ["REPLAYED"] * 9
    confirmed = await read(client, booking["id"], place.as_guest)
    assert (confirmed["status"], confirmed["payment"]["status"]) == ("CONFIRMED", "SUCCEEDED")
    assert await count(database, OutboxEvent, confirmed_events()) == 1
    assert [kind for kind, _, _ in await ledger(database)] == ["AUTHORIZE", "CAPTURE"]
    assert await count(database, ProviderEvent) == 1


async def test_a_bad_or_stale_signature_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, database: Database, clock: FakeClock, hooked: Stripe
) -> None:
    place = await a_place(client)
    endpoint, hooked.fake.endpoint = hooked.fake.endpoint, None
    booking, _ = await paid_in_browser(client, hooked, place)
    [event] = hooked.fake.events
    payload = json.dumps(event).encode()
    now = int(clock().timestamp())
    for signature in (
        stripe_signature(payload, "whsec_not_ours", now),
        stripe_signature(payload, SECRET, now - 301),  # older than five minutes
        stripe_signature(payload, SECRET, now + 301),
        stripe_signature(payload + b" ", SECRET, now),  # the body is not what was signed
        stripe_signature(payload, SECRET, now).replace("t=", "x="),
        "",
    ):
        answer = await client.post(
            "/webhooks/stripe", content=payload, headers={"Stripe-Signature": signature}
        )
        assert answer.status_code == 400, signature
        assert answer.json()["error"]["code"] == "BAD_SIGNATURE"
    assert await count(database, ProviderEvent) == 0
    assert (await read(client, booking["id"], place.as_guest))["status"] == "PENDING"
    # Within the tolerance, and signed with the older secret of the two: believed.
    hooked.fake.endpoint = WebhookEndpoint(URL, OLD_SECRET, endpoint.transport)
    assert (await hooked.fake.send(event, signed_at=now - 299)).status_code == 200
    assert (await read(client, booking["id"], place.as_guest))["status"] == "CONFIRMED"


async def test_without_a_secret_the_endpoint_is_not_there(
    client: httpx.AsyncClient, database: Database
) -> None:
    answer = await client.post("/webhooks/stripe", content=b"{}")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NOT_FOUND"


async def test_an_event_whose_amount_is_not_ours_is_not_believed(
    client: httpx.AsyncClient, database: Database, hooked: Stripe
) -> None:
    place = await a_place(client)
    endpoint, hooked.fake.endpoint = hooked.fake.endpoint, None
    booking, intent = await paid_in_browser(client, hooked, place)
    hooked.fake.endpoint = endpoint
    [event] = hooked.fake.events
    for change in ({"amount": 100}, {"currency": "usd"}):
        forged = json.loads(json.dumps(event))
        forged["id"] += str(change)
        forged["data"]["object"].update(change)
        assert (await hooked.fake.send(forged)).status_code == 200
    waiting = await read(client, booking["id"], place.as_guest)
    assert (waiting["status"], waiting["payment"]["status"]) == ("PENDING", "PENDING")
    assert await ledger(database) == []


@pytest.mark.parametrize("instant", [True, False])
async def test_a_failure_delivered_after_the_success_does_not_move_it_back(
    client: httpx.AsyncClient, database: Database, hooked: Stripe, instant: bool
) -> None:
    place = await a_place(client, instantBook=instant)
    endpoint, hooked.fake.endpoint = hooked.fake.endpoint, None
    booking = await booked(client, place, 10, 12)
    started = await start(client, place, booking["id"])
    secret = started["clientSecret"]
    declined = await confirm_in_browser(hooked.url, secret, "pm_card_chargeDeclined")
    assert declined.status_code == 402
    await confirm_in_browser(hooked.url, secret)  # another card, at once
    hooked.fake.endpoint = endpoint
    failed, paid = hooked.fake.events
    assert failed["type"] == "payment_intent.payment_failed"
    await hooked.fake.send(paid)
    await hooked.fake.send(failed)  # Stripe does not promise the order
    await hooked.fake.send(failed)
    after = await read(client, booking["id"], place.as_host)
    if instant:
        assert (after["status"], after["payment"]["status"]) == ("CONFIRMED", "SUCCEEDED")
        assert [kind for kind, _, _ in await ledger(database)] == ["AUTHORIZE", "CAPTURE"]
    else:
        assert (after["status"], after["payment"]["status"]) == ("PENDING", "AUTHORIZED")
        assert [kind for kind, _, _ in await ledger(database)] == ["AUTHORIZE"]


async def test_an_unknown_type_or_payment_is_answered_and_ignored(
    client: httpx.AsyncClient, database: Database, hooked: Stripe
) -> None:
    unknown_type = hooked.fake.event("customer.created", {"id": "cus_1", "object": "customer"})
    answer = await hooked.fake.send(unknown_type)
    assert (answer.status_code, answer.json()["outcome"]) == (200, "IGNORED")
    not_ours = hooked.fake.event(
        "payment_intent.succeeded",
        {"id": "pi_elsewhere", "object": "payment_intent", "amount": 500, "currency": "eur",
         "status": "succeeded", "metadata": {}},
    )  # fmt: skip
    answer = await hooked.fake.send(not_ours)
    assert (answer.status_code, answer.json()["outcome"]) == (200, "UNKNOWN_PAYMENT")
    # Both recorded as seen; only the one a handler knows as processed.
    assert await count(database, ProviderEvent) == 2
    assert await count(database, ProviderEvent, ProviderEvent.processed_at.is_(None)) == 1


async def test_a_held_request_to_book_goes_to_the_host_then_capture_confirms(
    app: Starlette, client: httpx.AsyncClient, database: Database, hooked: Stripe
) -> None:
    place = await a_place(client, instantBook=False)
    booking, intent = await paid_in_browser(client, hooked, place)
    assert [e["type"] for e in hooked.fake.events] == ["payment_intent.amount_capturable_updated"]
    held = await read(client, booking["id"], place.as_host)
    assert (held["status"], held["payment"]["status"]) == ("PENDING", "AUTHORIZED")
    assert await count(database, OutboxEvent, OutboxEvent.kind == "BookingRequested") == 1

    accepted = await client.post(
        "/graphql",
        json={"query": ACCEPT, "variables": {"id": booking["id"]}},
        headers=place.as_host,
    )
    accepted_booking = accepted.json()["data"]["acceptBooking"]
    assert (accepted_booking["status"], accepted_booking["payment"]["status"]) == (
        "CONFIRMED",
        "SUCCEEDED",
    )
    # The capture's own succeeded event came while the capture was in flight: it changed
    # nothing, and its replay changes nothing either.
    assert hooked.fake.events[-1]["type"] == "payment_intent.succeeded"
    await hooked.fake.send(hooked.fake.events[-1])
    assert [kind for kind, _, _ in await ledger(database)] == ["AUTHORIZE", "CAPTURE"]
    assert await count(database, OutboxEvent, confirmed_events()) == 1


async def test_a_declined_card_fails_the_payment_and_a_worker_closes_the_intent(
    app: Starlette, client: httpx.AsyncClient, database: Database, hooked: Stripe
) -> None:
    place = await a_place(client)
    booking, intent = await paid_in_browser(client, hooked, place, "pm_card_chargeDeclined")
    assert [e["type"] for e in hooked.fake.events] == ["payment_intent.payment_failed"]
    waiting = await read(client, booking["id"], place.as_guest)
    assert (waiting["status"], waiting["payment"]["status"]) == ("PENDING", "FAILED")
    # The route asked nobody: closing the intent at Stripe is a worker's, once it is due.
    assert intent["status"] == "requires_payment_method"
    assert await ledger(database) == [("RELEASE", "REQUESTED", None)]
    clock = app.state.services.clock
    clock.advance(minutes=2)
    await build_worker(app.state.settings, app.state.database, app.state.services).run_once()
    assert intent["status"] == "canceled"
    assert await ledger(database) == [("RELEASE", "SUCCEEDED", intent["id"])]
    # Stripe's canceled event for it changes nothing more.
    assert hooked.fake.events[-1]["type"] == "payment_intent.canceled"
    assert hooked.fake.deliveries[-1] == (hooked.fake.events[-1]["id"], 200)
    assert (await read(client, booking["id"], place.as_guest))["payment"]["status"] == "FAILED"


async def test_a_body_past_the_limit_is_refused_before_it_is_read(
    client: httpx.AsyncClient, database: Database, hooked: Stripe, clock: FakeClock
) -> None:
    payload = (
        b'{"id": "evt_big", "type": "x", "data": {"object": {}}, "pad": "'
        + b"x" * (2 * 1024 * 1024)
        + b'"}'
    )
    signature = stripe_signature(payload, SECRET, int(clock().timestamp()))
    answer = await client.post(
        "/webhooks/stripe", content=payload, headers={"Stripe-Signature": signature}
    )
    assert answer.status_code == 413
    assert await count(database, ProviderEvent) == 0


@pytest.fixture
async def relay(database_url: str) -> AsyncIterator[Relay]:
    relay = Relay.to_postgres(database_url)
    await relay.start()
    yield relay
    await relay.cut()


async def test_a_database_out_of_reach_is_a_503_that_stripe_retries(
    relay: Relay, database_url: str, database: Database
) -> None:
    settings = make_settings(
        relay.postgres_url(database_url), stripe_webhook_secret=[SecretStr(SECRET)]
    )
    event = {
        "id": "evt_outage",
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_x", "amount": 100, "currency": "eur", "metadata": {}}},
    }
    payload = json.dumps(event).encode()
    async with running(create_app(settings)) as app, http_client(app) as client:

        async def deliver() -> httpx.Response:
            now = int(app.state.services.clock().timestamp())
            signature = stripe_signature(payload, SECRET, now)
            return await client.post(
                "/webhooks/stripe", content=payload, headers={"Stripe-Signature": signature}
            )

        await relay.cut()
        answer = await deliver()
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        await relay.restore()
        answer = await deliver()
        assert (answer.status_code, answer.json()["outcome"]) == (200, "UNKNOWN_PAYMENT")


async def test_a_signed_body_that_is_no_event_is_a_bad_request(
    client: httpx.AsyncClient, database: Database, hooked: Stripe, clock: FakeClock
) -> None:
    for payload in (b"not json", b"[]", b'{"id": "evt_1", "type": "x"}'):
        signature = stripe_signature(payload, SECRET, int(clock().timestamp()))
        answer = await client.post(
            "/webhooks/stripe", content=payload, headers={"Stripe-Signature": signature}
        )
        assert answer.status_code == 400, payload
        assert answer.json()["error"]["code"] == "BAD_REQUEST"
    assert await count(database, ProviderEvent) == 0


async def test_a_payment_made_as_its_booking_was_cancelled_is_refunded_once(
    app: Starlette, client: httpx.AsyncClient, database: Database, hooked: Stripe
) -> None:
    place = await a_place(client)
    booking = await booked(client, place, 10, 12)
    started = await start(client, place, booking["id"])
    endpoint, hooked.fake.endpoint = hooked.fake.endpoint, None  # Stripe's event is late
    await confirm_in_browser(hooked.url, started["clientSecret"])
    [succeeded] = hooked.fake.events
    cancel = "mutation($id: ID!) { cancelBooking(id: $id) { status } }"
    body = await gql(client, cancel, {"id": booking["id"]}, headers=place.as_guest)
    assert body["data"]["cancelBooking"]["status"] == "CANCELED"

    hooked.fake.endpoint = endpoint
    assert (await hooked.fake.send(succeeded)).status_code == 200
    assert [(kind, status) for kind, status, _ in await ledger(database)] == [
        ("RELEASE", "FAILED"), ("CAPTURE", "SUCCEEDED"), ("REFUND", "REQUESTED"),
    ]  # fmt: skip
    assert hooked.fake.refunds == {}  # the webhook asks nobody: a worker refunds
    app.state.services.clock.advance(minutes=1)
    await build_worker(app.state.settings, app.state.database, app.state.services).run_once()
    [refund] = hooked.fake.refunds.values()
    assert refund["amount"] == 26_220
    for _ in range(3):
        await hooked.fake.send(succeeded)
    assert len(hooked.fake.refunds) == 1
    after = await read(client, booking["id"], place.as_guest)
    assert after["payment"]["refundedAmount"]["amount"] == "262.20"
