"""PayPal through its REST API (Orders v2 and Payments v2), over httpx.

The guest approves an order on PayPal's site (the order's ``approve`` or ``payer-action``
link); Roost then captures it (intent CAPTURE), or, for a request to book, authorizes it to hold
the money and captures the authorization when the host accepts (intent AUTHORIZE).

Roost keeps one reference per payment: the order id. Which authorization and which capture
belong to it, PayPal says when asked (``GET /v2/checkout/orders/{id}``), so every process and
every retry finds them without state of ours.

Amounts are decimal strings with as many decimals as PayPal takes for the currency: none for
JPY, HUF and TWD (for HUF and TWD our minor unit is a hundredth, so only whole units can be
paid), two for the others. Currencies PayPal does not take are refused before any call.
"""

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import httpx
from babel.numbers import get_currency_precision

from gateways.payments import (
    PaymentDeclined,
    PaymentIntent,
    PaymentPending,
    ProviderReport,
    ProviderUnavailable,
    Reported,
)
from gateways.tokens import CachedToken

log = logging.getLogger(__name__)

SANDBOX_API_BASE = "https://api-m.sandbox.paypal.com"
LIVE_API_BASE = "https://api-m.paypal.com"

# The currencies PayPal's REST API takes, and how many decimals each takes there
# (https://developer.paypal.com/reference/currency-codes/).
TWO_DECIMALS = "AUD BRL CAD CNY CZK DKK EUR HKD ILS MYR MXN NZD NOK PHP PLN GBP SGD SEK CHF THB USD"
PAYPAL_DECIMALS: Mapping[str, int] = {
    **dict.fromkeys(TWO_DECIMALS.split(), 2),
    **dict.fromkeys(("JPY", "HUF", "TWD"), 0),
}

# As the Stripe gateway takes it: "manual" holds the money until ``capture`` (a request to
# book), "automatic" takes it when the guest approves.
CaptureMethod = Literal["automatic", "manual"]


def supports(currency: str) -> bool:
    """Whether PayPal takes payments in ``currency``."""
    return currency.upper() in PAYPAL_DECIMALS


def to_paypal(amount_minor: int, currency: str) -> dict[str, str]:
    """A PayPal ``amount`` object; PaymentDeclined when PayPal cannot express the amount."""
    code = currency.upper()
    decimals = PAYPAL_DECIMALS.get(code)
    if decimals is None:
        raise PaymentDeclined(f"PayPal does not take payments in {code}.")
    ours = get_currency_precision(code)
    dropped = ours - decimals
    if dropped < 0 or amount_minor % 10**dropped:
        raise PaymentDeclined(f"PayPal takes {code} in whole units only.")
    value = Decimal(amount_minor // 10**dropped).scaleb(-decimals)
    return {"currency_code": code, "value": f"{value:.{decimals}f}"}


def amount_step(currency: str) -> int:
    """The smallest amount, in Roost's minor units, PayPal moves in ``currency``: a whole unit
    where PayPal takes fewer decimals than the currency has (HUF, TWD)."""
    code = currency.upper()
    dropped = int(get_currency_precision(code)) - PAYPAL_DECIMALS.get(code, 2)
    step: int = 10 ** max(dropped, 0)
    return step


def from_paypal(amount: Mapping[str, Any]) -> int:
    """Minor units of a PayPal ``amount`` object."""
    code = str(amount["currency_code"])
    return int(Decimal(str(amount["value"])).scaleb(get_currency_precision(code)))


@dataclass(frozen=True)
class Order:
    """What PayPal knows of an order: its status, intent and the movements under it."""

    id: str
    status: str
    intent: str
    amount_minor: int
    currency: str
    authorizations: list[dict[str, Any]]
    captures: list[dict[str, Any]]

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> "Order":
        authorizations: list[dict[str, Any]] = []
        captures: list[dict[str, Any]] = []
        units = body.get("purchase_units") or []
        amount = units[0].get("amount") if units else None
        for unit in units:
            payments = unit.get("payments") or {}
            authorizations += payments.get("authorizations") or []
            captures += payments.get("captures") or []
        return cls(
            id=str(body["id"]),
            status=str(body.get("status", "")),
            intent=str(body.get("intent", "")),
            amount_minor=from_paypal(amount) if amount else 0,
            currency=str(amount["currency_code"]) if amount else "",
            authorizations=authorizations,
            captures=captures,
        )


def decline_reason(body: Mapping[str, Any]) -> str:
    """The reason in a PayPal error body: the first detail's issue and description."""
    details = body.get("details") or []
    if details and isinstance(details[0], Mapping):
        issue = details[0].get("issue", "")
        description = details[0].get("description", "")
        return f"{issue}: {description}" if description else str(issue)
    return str(body.get("message") or body.get("name") or "PayPal refused the request.")


class PayPalGateway:
    """A ``PaymentGateway`` over PayPal's REST API; ``reference`` is always the order id."""

    provider = "PAYPAL"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        client_id: str,
        client_secret: str,
        api_base: str = SANDBOX_API_BASE,
        return_url: str = "http://localhost:3000/payments/paypal/return",
        cancel_url: str = "http://localhost:3000/payments/paypal/cancel",
        brand_name: str = "Roost",
        clock: Callable[[], float] = time.monotonic,
        retry_delays: Sequence[float] = (0.5, 2.0),
    ) -> None:
        self._http = http
        self._retry_delays = tuple(retry_delays)
        self._credentials = (client_id, client_secret)
        self._api_base = api_base.rstrip("/")
        self._return_url = return_url
        self._cancel_url = cancel_url
        self._brand_name = brand_name
        self._token = CachedToken(
            lambda: self._http.post(
                f"{self._api_base}/v1/oauth2/token",
                auth=self._credentials,
                data={"grant_type": "client_credentials"},
                headers={"Accept": "application/json"},
            ),
            provider="PayPal",
            clock=clock,
        )

    supports = staticmethod(supports)
    amount_step = staticmethod(amount_step)

    # The token.

    async def _access_token(self, *, stale: str | None = None) -> str:
        return await self._token.get(stale=stale)

    # One call.

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """One request, asked again after ``retry_delays`` while PayPal cannot answer, when
        asking again is safe: a read, or a write under its ``PayPal-Request-Id``."""
        delays = self._retry_delays if method == "GET" or request_id is not None else ()
        for delay in delays:
            try:
                return await self._call_once(method, path, body=body, request_id=request_id)
            except ProviderUnavailable as unanswered:
                log.info("PayPal %s %s: %s; asking again", method, path, unanswered)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 (jitter)
        return await self._call_once(method, path, body=body, request_id=request_id)

    async def _call_once(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None,
        request_id: str | None,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json", "Prefer": "return=representation"}
        if request_id is not None:
            # PayPal answers a repeated request id with the first answer, moving nothing more.
            headers["PayPal-Request-Id"] = request_id
        token = await self._access_token()
        for attempt in range(2):
            try:
                response = await self._http.request(
                    method,
                    f"{self._api_base}{path}",
                    json=body,
                    headers={**headers, "Authorization": f"Bearer {token}"},
                )
            except httpx.HTTPError as error:
                raise ProviderUnavailable(f"PayPal did not answer: {error!r}") from None
            if response.status_code == 401 and attempt == 0:
                token = await self._access_token(stale=token)
                continue
            break
        status = response.status_code
        if status == 204:
            return {}
        try:
            answer = response.json() if response.content else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        if 200 <= status < 300:
            return answer
        # Not a refusal of the payment: our credentials, a rate limit, a request still running
        # under the same PayPal-Request-Id (409), or PayPal's own trouble. Asked again under
        # the same id, PayPal answers what it did.
        if status in (401, 403, 408, 409, 429) or status >= 500:
            raise ProviderUnavailable(f"PayPal answered {status} to {method} {path}")
        reason = decline_reason(answer)
        log.info("PayPal refused %s %s: %s (debug_id %s)", method, path, reason,
                 answer.get("debug_id"))  # fmt: skip
        raise PaymentDeclined(reason)

    # The gateway.

    async def create(
        self,
        *,
        amount_minor: int,
        currency: str,
        description: str,
        idempotency_key: str,
        capture: CaptureMethod = "automatic",
        metadata: Mapping[str, str] | None = None,
    ) -> PaymentIntent:
        """An order for the guest to approve; ``capture="manual"`` makes it an authorization
        (request to book). ``metadata``'s ``payment_id`` and ``booking_id`` travel with it as
        ``invoice_id`` and ``custom_id``."""
        metadata = metadata or {}
        unit: dict[str, Any] = {
            "amount": to_paypal(amount_minor, currency),
            "description": description[:127],
        }
        if "payment_id" in metadata:
            unit["invoice_id"] = f"roost-payment-{metadata['payment_id']}"
        if "booking_id" in metadata:
            unit["custom_id"] = f"roost-booking-{metadata['booking_id']}"
        order = await self._call(
            "POST",
            "/v2/checkout/orders",
            body={
                "intent": "AUTHORIZE" if capture == "manual" else "CAPTURE",
                "purchase_units": [unit],
                "payment_source": {
                    "paypal": {
                        "experience_context": {
                            "brand_name": self._brand_name,
                            "shipping_preference": "NO_SHIPPING",
                            "user_action": "PAY_NOW" if capture == "automatic" else "CONTINUE",
                            "return_url": self._return_url,
                            "cancel_url": self._cancel_url,
                        }
                    }
                },
            },
            request_id=idempotency_key,
        )
        links = {link.get("rel"): link.get("href") for link in order.get("links") or []}
        return PaymentIntent(
            reference=str(order["id"]),
            redirect_url=links.get("payer-action") or links.get("approve"),
        )

    async def order(self, reference: str) -> Order:
        return Order.of(await self._call("GET", f"/v2/checkout/orders/{reference}"))

    async def look_up(self, reference: str) -> ProviderReport:
        """Where the order stands. An approved AUTHORIZE order holds nothing until authorized,
        so it is authorized here (under a request id of its own: asked again, PayPal answers
        the same authorization) before it is reported AUTHORIZED."""
        order = await self.order(reference)
        if order.status == "APPROVED" and order.intent == "AUTHORIZE":
            try:
                await self._authorize(reference, f"{reference}-authorize")
            except PaymentDeclined as declined:
                order = await self.order(reference)  # authorized meanwhile, by a capture say
                if not order.authorizations:
                    return self._report(order, Reported.FAILED, reason=str(declined))
            else:
                order = await self.order(reference)
        return self._report(order, *_state_of(order))

    @staticmethod
    def _report(
        order: Order, state: Reported, reference: str | None = None, reason: str | None = None
    ) -> ProviderReport:
        return ProviderReport(
            state, order.amount_minor, order.currency, reference=reference, reason=reason
        )

    async def authorize(self, reference: str, *, idempotency_key: str) -> str:
        """Holds the money of an approved AUTHORIZE order; answers the authorization id. An
        order authorized already answers its authorization."""
        order = await self.order(reference)
        if order.authorizations:
            return str(order.authorizations[0]["id"])
        return str((await self._authorize(reference, idempotency_key))["id"])

    async def _authorize(self, reference: str, idempotency_key: str) -> dict[str, Any]:
        answer = await self._call(
            "POST",
            f"/v2/checkout/orders/{reference}/authorize",
            body={},
            request_id=idempotency_key,
        )
        authorizations = Order.of(answer).authorizations
        if not authorizations:
            raise PaymentDeclined("PayPal did not authorize the order.")
        if authorizations[0].get("status") in ("DENIED", "VOIDED", "EXPIRED"):
            raise PaymentDeclined(f"PayPal's authorization is {authorizations[0]['status']}.")
        return authorizations[0]

    async def capture(self, reference: str, *, amount_minor: int, idempotency_key: str) -> str:
        """Takes the approved order's money (CAPTURE), or the authorization's (AUTHORIZE; an
        order approved but not yet authorized is authorized first)."""
        order = await self.order(reference)
        if order.intent == "AUTHORIZE":
            authorization = (
                order.authorizations[0]
                if order.authorizations
                else await self._authorize(reference, f"{idempotency_key}-authorize")
            )
            currency = str(authorization["amount"]["currency_code"])
            answer = await self._call(
                "POST",
                f"/v2/payments/authorizations/{authorization['id']}/capture",
                body={"amount": to_paypal(amount_minor, currency), "final_capture": True},
                request_id=idempotency_key,
            )
            return _captured(answer)
        if order.amount_minor != amount_minor:
            # An order is captured whole, so a different amount is refused before anything moves.
            raise PaymentDeclined("PayPal captures an order for its whole amount only.")
        answer = await self._call(
            "POST",
            f"/v2/checkout/orders/{reference}/capture",
            body={},
            request_id=idempotency_key,
        )
        captures = Order.of(answer).captures
        if not captures:
            raise PaymentDeclined("PayPal did not capture the order.")
        return _captured(captures[0])

    async def release(self, reference: str, *, idempotency_key: str) -> str:
        """Voids the order's authorization. An order never authorized holds nothing: PayPal
        lets it expire, and its id is the answer. Money captured can only be refunded."""
        order = await self.order(reference)
        held = [a for a in order.authorizations if a.get("status") in ("CREATED", "PENDING")]
        if held:
            await self._call(
                "POST",
                f"/v2/payments/authorizations/{held[0]['id']}/void",
                request_id=idempotency_key,
            )
            return str(held[0]["id"])
        if order.captures:
            raise PaymentDeclined("PayPal captured this payment already: refund it instead.")
        return str(order.authorizations[0]["id"]) if order.authorizations else order.id

    async def refund(self, reference: str, *, amount_minor: int, idempotency_key: str) -> str:
        """Returns ``amount_minor`` of the order's capture."""
        if amount_minor <= 0:
            raise PaymentDeclined("a refund must be more than zero")
        order = await self.order(reference)
        if not order.captures:
            raise PaymentDeclined("Nothing of this PayPal order was captured.")
        capture = order.captures[0]
        currency = str(capture["amount"]["currency_code"])
        answer = await self._call(
            "POST",
            f"/v2/payments/captures/{capture['id']}/refund",
            # custom_id names our ledger entry, so its webhook finds it before the answer lands.
            body={"amount": to_paypal(amount_minor, currency), "custom_id": idempotency_key},
            request_id=idempotency_key,
        )
        return _refunded(answer)

    async def look_up_refund(self, reference: str) -> str:
        return _refunded(await self._call("GET", f"/v2/payments/refunds/{reference}"))

    async def charge(
        self, reference: str, *, amount_minor: int, currency: str, idempotency_key: str
    ) -> str:
        # An approved order cannot be charged again without a vaulted payment method.
        raise PaymentDeclined("PayPal cannot charge more to this payment; pay the difference anew.")

    async def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, *, webhook_id: str
    ) -> dict[str, Any] | None:
        """The event ``body`` holds when PayPal confirms it signed it for ``webhook_id``
        (``POST /v1/notifications/verify-webhook-signature``); None when it does not, or
        when the delivery lacks its signature. ProviderUnavailable when PayPal cannot say."""
        lowered = {name.lower(): value for name, value in headers.items()}
        fields = {field: lowered.get(header) for field, header in WEBHOOK_HEADERS.items()}
        try:
            event = json.loads(body)
        except ValueError:
            return None
        if not isinstance(event, dict) or not all(fields.values()):
            return None
        try:
            answer = await self._call(
                "POST",
                "/v1/notifications/verify-webhook-signature",
                body={**fields, "webhook_id": webhook_id, "webhook_event": event},
            )
        except PaymentDeclined:
            return None
        return event if answer.get("verification_status") == "SUCCESS" else None


# The signature of a webhook delivery, in its headers, by field of the verification request.
WEBHOOK_HEADERS = {
    "auth_algo": "paypal-auth-algo",
    "cert_url": "paypal-cert-url",
    "transmission_id": "paypal-transmission-id",
    "transmission_sig": "paypal-transmission-sig",
    "transmission_time": "paypal-transmission-time",
}


def _state_of(order: Order) -> tuple[Reported, str | None]:
    """An order's state in Roost's words, with the capture's id once the money is taken."""
    for capture in order.captures:
        status = capture.get("status")
        if status in ("COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"):
            return Reported.CAPTURED, str(capture["id"])
        if status in ("DECLINED", "FAILED"):
            return Reported.FAILED, None
        return Reported.WAITING, None  # PENDING: PayPal completes it later
    for authorization in order.authorizations:
        status = authorization.get("status")
        if status in ("CREATED", "PENDING"):
            return Reported.AUTHORIZED, str(authorization["id"])
        if status == "DENIED":
            return Reported.FAILED, None
        if status in ("VOIDED", "EXPIRED"):
            return Reported.CANCELED, None
    if order.status == "APPROVED":  # CAPTURE intent: Roost captures it
        return Reported.AUTHORIZED, order.id
    if order.status == "VOIDED":
        return Reported.CANCELED, None
    if order.status in ("DECLINED", "DENIED"):
        return Reported.FAILED, None
    return Reported.WAITING, None  # CREATED, PAYER_ACTION_REQUIRED, SAVED


def _refunded(refund: Mapping[str, Any]) -> str:
    """A refund's id once COMPLETED; PaymentPending while PENDING (an eCheck not cleared, say),
    declined once FAILED or CANCELLED (https://developer.paypal.com/api/payments/v2/)."""
    status = refund.get("status")
    if status == "PENDING":
        raise PaymentPending(str(refund["id"]))
    if status != "COMPLETED":
        raise PaymentDeclined(f"PayPal's refund is {status}.")
    return str(refund["id"])


def _captured(capture: Mapping[str, Any]) -> str:
    """The id of a capture PayPal made: COMPLETED, or PENDING (it completes later, which its
    webhook says); a DECLINED or FAILED one is a refusal."""
    status = capture.get("status")
    if status in ("DECLINED", "FAILED"):
        reason = (capture.get("status_details") or {}).get("reason")
        raise PaymentDeclined(f"PayPal's capture was {status}" + (f": {reason}" if reason else "."))
    return str(capture["id"])


if TYPE_CHECKING:
    from gateways.payments import PaymentGateway, PaymentLookup, RefundLookup

    def _is_a_gateway(gateway: PayPalGateway) -> PaymentGateway:
        return gateway

    def _is_a_lookup(gateway: PayPalGateway) -> PaymentLookup:
        return gateway

    def _looks_up_refunds(gateway: PayPalGateway) -> RefundLookup:
        return gateway
