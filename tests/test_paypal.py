"""The PayPal gateway against a local fake of PayPal's REST API, over real HTTP on loopback."""

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from app.settings import Settings
from gateways.payments import PaymentDeclined, ProviderUnavailable, Reported
from gateways.paypal import PayPalGateway, supports, to_paypal
from tests.fakes.paypal_api import CLIENT_ID, CLIENT_SECRET, FakePayPal
from tests.helpers import serving


@pytest.fixture(scope="module")
async def paypal_server() -> AsyncIterator[tuple[list[ASGIApp], str]]:
    """One server for the module (starting and stopping uvicorn takes a quarter second),
    passing each request to the current test's fake."""
    current: list[ASGIApp] = []

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        await current[-1](scope, receive, send)

    async with serving(Starlette(routes=[Mount("", app=dispatch)])) as base_url:
        yield current, base_url


@pytest.fixture
def fake(paypal_server: tuple[list[ASGIApp], str]) -> FakePayPal:
    current, base_url = paypal_server
    paypal = FakePayPal(base_url=base_url)
    current.append(paypal.app())
    return paypal


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


@pytest.fixture
def gateway(fake: FakePayPal, http: httpx.AsyncClient) -> PayPalGateway:
    """Asks each request once: a failure the fake injects is the gateway's answer."""
    return PayPalGateway(
        http,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        api_base=fake.base_url,
        retry_delays=(),
    )


async def approved(
    gateway: PayPalGateway,
    fake: FakePayPal,
    *,
    amount: int = 12_345,
    currency: str = "EUR",
    manual: bool = False,
    key: str = "payment-1-create",
) -> str:
    intent = await gateway.create(
        amount_minor=amount,
        currency=currency,
        description="Roost booking 1",
        idempotency_key=key,
        capture="manual" if manual else "automatic",
        metadata={"booking_id": "1", "payment_id": "1"},
    )
    assert intent.redirect_url is not None
    # The buyer follows the link and approves at PayPal.
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(intent.redirect_url)).status_code == 200
    return intent.reference


async def test_an_order_is_created_approved_and_captured(
    gateway: PayPalGateway, fake: FakePayPal
) -> None:
    intent = await gateway.create(
        amount_minor=12_345,
        currency="EUR",
        description="Roost booking 7",
        idempotency_key="payment-3-create",
        metadata={"booking_id": "7", "payment_id": "3"},
    )
    order = fake.orders[intent.reference]
    assert order["intent"] == "CAPTURE"
    assert order["status"] == "PAYER_ACTION_REQUIRED"
    unit = order["purchase_units"][0]
    assert unit["amount"] == {"currency_code": "EUR", "value": "123.45"}
    assert (unit["custom_id"], unit["invoice_id"]) == ("roost-booking-7", "roost-payment-3")
    assert intent.redirect_url == f"{fake.base_url}/checkoutnow?token={intent.reference}"

    with pytest.raises(PaymentDeclined, match="ORDER_NOT_APPROVED"):
        await gateway.capture(intent.reference, amount_minor=12_345, idempotency_key="c0")
    fake.approve(intent.reference)
    capture_id = await gateway.capture(
        intent.reference, amount_minor=12_345, idempotency_key="payment-3-capture"
    )
    assert fake.orders[intent.reference]["status"] == "COMPLETED"
    assert fake.captures[capture_id]["amount"] == {"currency_code": "EUR", "value": "123.45"}
    assert fake.moves == [("capture", capture_id, Decimal("123.45"), "EUR")]
    assert (await gateway.order(intent.reference)).captures[0]["id"] == capture_id


async def test_an_order_is_captured_whole_or_not_at_all(
    gateway: PayPalGateway, fake: FakePayPal
) -> None:
    order_id = await approved(gateway, fake)
    order = await gateway.order(order_id)
    assert (order.status, order.intent, order.amount_minor, order.currency) == (
        "APPROVED",
        "CAPTURE",
        12_345,
        "EUR",
    )
    with pytest.raises(PaymentDeclined, match="whole amount"):
        await gateway.capture(order_id, amount_minor=12_000, idempotency_key="cap")
    assert fake.moves == []


async def test_request_to_book_authorizes_then_captures_on_accept(
    gateway: PayPalGateway, fake: FakePayPal
) -> None:
    order_id = await approved(gateway, fake, manual=True)
    assert fake.orders[order_id]["intent"] == "AUTHORIZE"
    authorization_id = await gateway.authorize(order_id, idempotency_key="payment-1-authorize")
    assert fake.authorizations[authorization_id]["status"] == "CREATED"
    # Asked again, the hold is the one already placed.
    assert await gateway.authorize(order_id, idempotency_key="other") == authorization_id

    capture_id = await gateway.capture(
        order_id, amount_minor=12_345, idempotency_key="payment-1-capture"
    )
    assert fake.authorizations[authorization_id]["status"] == "CAPTURED"
    assert [move[0] for move in fake.moves] == ["authorize", "capture"]
    assert fake.moves[1] == ("capture", capture_id, Decimal("123.45"), "EUR")
    # Nothing captured can be voided.
    with pytest.raises(PaymentDeclined, match="refund it instead"):
        await gateway.release(order_id, idempotency_key="payment-1-release")
    related = fake.captures[capture_id]["supplementary_data"]["related_ids"]
    assert related == {"order_id": order_id, "authorization_id": authorization_id}


async def test_a_capture_authorizes_an_approved_order_first(
    gateway: PayPalGateway, fake: FakePayPal
) -> None:
    order_id = await approved(gateway, fake, manual=True)
    capture_id = await gateway.capture(order_id, amount_minor=12_345, idempotency_key="k")
    assert [move[:2] for move in fake.moves][1] == ("capture", capture_id)
    assert fake.moves[0][0] == "authorize"


async def test_a_declined_request_voids_the_authorization(
    gateway: PayPalGateway, fake: FakePayPal
) -> None:
    order_id = await approved(gateway, fake, manual=True)
    authorization_id = await gateway.authorize(order_id, idempotency_key="payment-1-authorize")
    assert await gateway.release(order_id, idempotency_key="payment-1-release") == authorization_id
    assert fake.authorizations[authorization_id]["status"] == "VOIDED"
    # Released again (a retry), nothing more happens.
    assert await gateway.release(order_id, idempotency_key="payment-1-release") == authorization_id
    assert [move[0] for move in fake.moves] == ["authorize", "void"]
    with pytest.raises(PaymentDeclined, match="AUTHORIZATION_VOIDED"):
        await gateway.capture(order_id, amount_minor=12_345, idempotency_key="late-capture")


async def test_releasing_an_order_never_authorized_moves_nothing(
    gateway: PayPalGateway, fake: FakePayPal
) -> None:
    order_id = await approved(gateway, fake, manual=True)
    assert await gateway.release(order_id, idempotency_key="payment-1-release") == order_id
    with pytest.raises(PaymentDeclined, match="Nothing of this PayPal order was captured"):
        await gateway.refund(order_id, amount_minor=100, idempotency_key="refund")
    assert fake.moves == []


async def test_refunds_partly_then_the_rest(gateway: PayPalGateway, fake: FakePayPal) -> None:
    order_id = await approved(gateway, fake)
    capture_id = await gateway.capture(order_id, amount_minor=12_345, idempotency_key="cap")
    with pytest.raises(PaymentDeclined, match="refund it instead"):
        await gateway.release(order_id, idempotency_key="release")
    first = await gateway.refund(order_id, amount_minor=2_345, idempotency_key="refund-1")
    assert fake.captures[capture_id]["status"] == "PARTIALLY_REFUNDED"
    with pytest.raises(PaymentDeclined, match="REFUND_AMOUNT_EXCEEDED"):
        await gateway.refund(order_id, amount_minor=10_001, idempotency_key="refund-2")
    second = await gateway.refund(order_id, amount_minor=10_000, idempotency_key="refund-3")
    assert fake.captures[capture_id]["status"] == "REFUNDED"
    assert fake.moves[1:] == [
        ("refund", first, Decimal("23.45"), "EUR"),
        ("refund", second, Decimal("100.00"), "EUR"),
    ]
    with pytest.raises(PaymentDeclined, match="CAPTURE_FULLY_REFUNDED"):
        await gateway.refund(order_id, amount_minor=1, idempotency_key="refund-4")


async def test_a_refund_of_an_authorized_capture(gateway: PayPalGateway, fake: FakePayPal) -> None:
    order_id = await approved(gateway, fake, manual=True, currency="JPY", amount=18_000)
    await gateway.capture(order_id, amount_minor=18_000, idempotency_key="cap")
    refund_id = await gateway.refund(order_id, amount_minor=4_500, idempotency_key="refund")
    assert fake.refunds[refund_id]["amount"] == {"currency_code": "JPY", "value": "4500"}


async def test_yen_are_sent_without_decimals_and_euros_with_two(
    gateway: PayPalGateway, fake: FakePayPal
) -> None:
    yen = await approved(gateway, fake, currency="JPY", amount=18_000, key="yen")
    euros = await approved(gateway, fake, currency="EUR", amount=5, key="euros")
    assert fake.orders[yen]["purchase_units"][0]["amount"]["value"] == "18000"
    assert fake.orders[euros]["purchase_units"][0]["amount"]["value"] == "0.05"
    await gateway.capture(yen, amount_minor=18_000, idempotency_key="yen-capture")
    assert fake.moves[0][2:] == (Decimal(18_000), "JPY")
    # Forints: our minor unit is the fillér, PayPal takes whole forints only.
    assert to_paypal(150_000, "HUF") == {"currency_code": "HUF", "value": "1500"}
    with pytest.raises(PaymentDeclined, match="whole units"):
        to_paypal(150_050, "HUF")


async def test_currencies_paypal_does_not_take_are_refused_before_any_call(
    gateway: PayPalGateway, fake: FakePayPal
) -> None:
    assert supports("EUR") and supports("jpy")
    assert not supports("KWD") and not supports("KES")
    assert gateway.supports("USD") and not gateway.supports("KWD")
    for currency in ("KWD", "KES"):
        with pytest.raises(PaymentDeclined, match=f"PayPal does not take payments in {currency}"):
            await gateway.create(
                amount_minor=12_345,
                currency=currency,
                description="Roost booking 1",
                idempotency_key=f"payment-{currency}",
            )
    assert fake.requests == [] and fake.orders == {}


async def test_a_declined_instrument_is_payment_declined(
    gateway: PayPalGateway, fake: FakePayPal
) -> None:
    intent = await gateway.create(
        amount_minor=9_900, currency="USD", description="Roost", idempotency_key="declined"
    )
    fake.approve(intent.reference, instrument_declined=True)
    with pytest.raises(PaymentDeclined) as declined:
        await gateway.capture(intent.reference, amount_minor=9_900, idempotency_key="cap")
    assert str(declined.value).startswith("INSTRUMENT_DECLINED: The instrument presented")
    assert fake.moves == []


async def test_the_token_is_cached_and_renewed_when_refused(
    gateway: PayPalGateway, fake: FakePayPal
) -> None:
    order_id = await approved(gateway, fake)
    await gateway.order(order_id)
    assert fake.tokens_issued == 1
    fake.expire_tokens()
    await gateway.capture(order_id, amount_minor=12_345, idempotency_key="cap")
    assert fake.tokens_issued == 2
    assert len(fake.moves) == 1


async def test_the_token_is_renewed_shortly_before_it_expires(
    fake: FakePayPal, http: httpx.AsyncClient
) -> None:
    now = [1_000.0]
    gateway = PayPalGateway(
        http,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        api_base=fake.base_url,
        clock=lambda: now[0],
    )
    order_id = await approved(gateway, fake)
    now[0] += fake.token_seconds - 61
    await gateway.order(order_id)
    assert fake.tokens_issued == 1
    now[0] += 2  # within the last minute of the token's life
    await gateway.order(order_id)
    assert fake.tokens_issued == 2


async def test_wrong_credentials_are_unavailable_not_declined(
    fake: FakePayPal, http: httpx.AsyncClient
) -> None:
    gateway = PayPalGateway(
        http, client_id=CLIENT_ID, client_secret="wrong", api_base=fake.base_url
    )
    with pytest.raises(ProviderUnavailable, match="credentials"):
        await gateway.create(
            amount_minor=100, currency="EUR", description="Roost", idempotency_key="k"
        )


async def test_server_errors_and_no_answer_are_provider_unavailable(
    gateway: PayPalGateway, fake: FakePayPal, http: httpx.AsyncClient
) -> None:
    order_id = await approved(gateway, fake)
    fake.fail_next(500)
    with pytest.raises(ProviderUnavailable, match="500"):
        await gateway.capture(order_id, amount_minor=12_345, idempotency_key="cap")
    fake.fail_next(503)
    with pytest.raises(ProviderUnavailable, match="503"):
        await gateway.refund(order_id, amount_minor=100, idempotency_key="refund")
    fake.fail_next(429)
    with pytest.raises(ProviderUnavailable, match="429"):
        await gateway.refund(order_id, amount_minor=100, idempotency_key="refund")
    assert fake.moves == []
    # An answer too late is no answer.
    fake.delay_next(0.5)
    async with httpx.AsyncClient(timeout=0.1) as impatient:
        hurried = PayPalGateway(
            impatient,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            api_base=fake.base_url,
            retry_delays=(),
        )
        with pytest.raises(ProviderUnavailable, match="ReadTimeout"):
            await hurried.order(order_id)
    # Nothing listens on port 9 of loopback: the connection is refused at once.
    nowhere = PayPalGateway(
        http,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        api_base="http://127.0.0.1:9",
        retry_delays=(),
    )
    with pytest.raises(ProviderUnavailable, match="did not answer"):
        await nowhere.order(order_id)


async def test_a_request_paypal_could_not_answer_is_asked_again_under_its_id(
    fake: FakePayPal, http: httpx.AsyncClient
) -> None:
    patient = PayPalGateway(
        http,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        api_base=fake.base_url,
        retry_delays=(0, 0),
    )
    order_id = await approved(patient, fake)
    fake.fail_next(503, 500)
    capture_id = await patient.capture(order_id, amount_minor=12_345, idempotency_key="cap")
    assert [(kind, id_) for kind, id_, *_ in fake.moves] == [("capture", capture_id)]
    fake.fail_next(503, 502, 500)  # three times unanswered: the caller hears it
    with pytest.raises(ProviderUnavailable, match="500"):
        await patient.refund(order_id, amount_minor=100, idempotency_key="refund")
    assert len(fake.moves) == 1


async def test_a_repeated_request_id_moves_money_once(
    gateway: PayPalGateway, fake: FakePayPal
) -> None:
    first = await gateway.create(
        amount_minor=12_345, currency="EUR", description="Roost", idempotency_key="payment-9-create"
    )
    again = await gateway.create(
        amount_minor=12_345, currency="EUR", description="Roost", idempotency_key="payment-9-create"
    )
    assert again.reference == first.reference
    assert len(fake.orders) == 1
    fake.approve(first.reference)

    capture = await gateway.capture(first.reference, amount_minor=12_345, idempotency_key="cap-9")
    # A retry whose first answer was lost: the same request id answers the same capture.
    assert await gateway.capture(first.reference, amount_minor=12_345, idempotency_key="cap-9") == (
        capture
    )
    refund = await gateway.refund(first.reference, amount_minor=345, idempotency_key="refund-9")
    assert await gateway.refund(first.reference, amount_minor=345, idempotency_key="refund-9") == (
        refund
    )
    assert [move[0] for move in fake.moves] == ["capture", "refund"]
    # Another id is another capture, which PayPal refuses for an order captured already.
    with pytest.raises(PaymentDeclined, match="ORDER_ALREADY_CAPTURED"):
        await gateway.capture(first.reference, amount_minor=12_345, idempotency_key="cap-10")


async def test_a_repeated_authorization_capture_moves_money_once(
    gateway: PayPalGateway, fake: FakePayPal
) -> None:
    order_id = await approved(gateway, fake, manual=True)
    await gateway.authorize(order_id, idempotency_key="auth")
    first = await gateway.capture(order_id, amount_minor=12_345, idempotency_key="cap")
    assert await gateway.capture(order_id, amount_minor=12_345, idempotency_key="cap") == first
    assert [move[0] for move in fake.moves] == ["authorize", "capture"]


async def test_paypal_cannot_charge_more(gateway: PayPalGateway, fake: FakePayPal) -> None:
    order_id = await approved(gateway, fake)
    with pytest.raises(PaymentDeclined, match="cannot charge more"):
        await gateway.charge(order_id, amount_minor=100, currency="EUR", idempotency_key="more")


def test_paypal_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "PAYPAL_CLIENT_ID",
        "PAYPAL_CLIENT_SECRET",
        "PAYPAL_API_BASE",
        "PAYPAL_WEBHOOK_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.paypal_api_base == "https://api-m.sandbox.paypal.com"
    assert settings.paypal_client_id is None and settings.paypal_client_secret is None
    monkeypatch.setenv("PAYPAL_CLIENT_ID", "app-id")
    monkeypatch.setenv("PAYPAL_CLIENT_SECRET", "app-secret")
    monkeypatch.setenv("PAYPAL_API_BASE", "https://api-m.paypal.com")
    monkeypatch.setenv("PAYPAL_WEBHOOK_ID", "WH-1")
    settings = Settings()
    assert settings.paypal_client_secret is not None
    assert settings.paypal_client_secret.get_secret_value() == "app-secret"
    assert "app-secret" not in repr(settings)
    assert (settings.paypal_client_id, settings.paypal_api_base, settings.paypal_webhook_id) == (
        "app-id",
        "https://api-m.paypal.com",
        "WH-1",
    )


async def test_a_webhook_is_trusted_only_when_paypal_verifies_it(
    gateway: PayPalGateway, fake: FakePayPal
) -> None:
    resource = {"id": "CAPTURE1", "status": "COMPLETED"}
    headers, body = fake.webhook("PAYMENT.CAPTURE.COMPLETED", resource, webhook_id="WH-1")
    event = await gateway.verify_webhook(headers, body, webhook_id="WH-1")
    assert event is not None
    assert (event["event_type"], event["resource"]) == ("PAYMENT.CAPTURE.COMPLETED", resource)
    # Another webhook's delivery, an edited body, a missing signature: not PayPal's.
    assert await gateway.verify_webhook(headers, body, webhook_id="WH-2") is None
    edited = body.replace(b"COMPLETED", b"REFUNDED")
    assert await gateway.verify_webhook(headers, edited, webhook_id="WH-1") is None
    unsigned = {k: v for k, v in headers.items() if k != "PAYPAL-TRANSMISSION-SIG"}
    assert await gateway.verify_webhook(unsigned, body, webhook_id="WH-1") is None
    assert await gateway.verify_webhook(headers, b"not json", webhook_id="WH-1") is None
    fake.fail_next(503)
    with pytest.raises(ProviderUnavailable):
        await gateway.verify_webhook(headers, body, webhook_id="WH-1")


# Asked where an order stands (the worker's check on payments still waiting).


async def test_look_up_reports_an_order_in_roosts_words(
    gateway: PayPalGateway, fake: FakePayPal
) -> None:
    intent = await gateway.create(
        amount_minor=12_345, currency="EUR", description="d", idempotency_key="k-1",
        metadata={"booking_id": "1", "payment_id": "1"},
    )  # fmt: skip
    waiting = await gateway.look_up(intent.reference)
    assert (waiting.state, waiting.amount_minor, waiting.currency) == (
        Reported.WAITING, 12_345, "EUR"
    )  # fmt: skip
    fake.approve(intent.reference)
    assert (await gateway.look_up(intent.reference)).state == Reported.AUTHORIZED
    assert fake.moves == []  # an approved CAPTURE order is Roost's to capture
    capture_id = await gateway.capture(intent.reference, amount_minor=12_345, idempotency_key="c")
    captured = await gateway.look_up(intent.reference)
    assert (captured.state, captured.reference) == (Reported.CAPTURED, capture_id)


async def test_look_up_authorizes_an_approved_authorize_order_once(
    gateway: PayPalGateway, fake: FakePayPal
) -> None:
    order_id = await approved(gateway, fake, manual=True)
    first = await gateway.look_up(order_id)
    again = await gateway.look_up(order_id)
    [authorization] = fake.authorizations.values()
    assert first == again
    assert (first.state, first.reference, first.amount_minor) == (
        Reported.AUTHORIZED, authorization["id"], 12_345
    )  # fmt: skip
    assert [kind for kind, *_ in fake.moves] == ["authorize"]
    await gateway.release(order_id, idempotency_key="void")
    assert (await gateway.look_up(order_id)).state == Reported.CANCELED


async def test_look_up_reports_a_declined_instrument_as_failed(
    gateway: PayPalGateway, fake: FakePayPal
) -> None:
    intent = await gateway.create(
        amount_minor=5_000, currency="USD", description="d", idempotency_key="k-2",
        capture="manual", metadata={},
    )  # fmt: skip
    fake.approve(intent.reference, instrument_declined=True)
    report = await gateway.look_up(intent.reference)
    assert report.state == Reported.FAILED
    assert report.reason is not None and "INSTRUMENT_DECLINED" in report.reason
    assert fake.moves == []
