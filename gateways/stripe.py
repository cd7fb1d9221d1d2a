"""Stripe, through its official SDK (PaymentIntents; the guest confirms with Stripe.js, so card
data never reaches Roost). Calls go over the SDK's httpx client, so they never block the
event loop; ``api_base`` points the SDK at Stripe, or at any faithful implementation of its API.

Amounts cross here only: Roost counts in the ISO 4217 minor unit (JPY 0 decimals, KWD 3),
Stripe in its own, which differs for a few currencies (ISK has two decimals at Stripe) and,
for three-decimal currencies, takes only multiples of 10. What cannot be said exactly in
Stripe's units is refused, never rounded.
"""

import hashlib
import hmac
from collections.abc import Awaitable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import stripe
from babel.numbers import get_currency_precision

from gateways.payments import (
    CaptureMethod,
    PaymentDeclined,
    PaymentIntent,
    PaymentPending,
    ProviderReport,
    ProviderUnavailable,
    Reported,
)
from gateways.payouts import AccountState, OnboardingLink

T = TypeVar("T")

# https://docs.stripe.com/currencies: zero-decimal and three-decimal currencies; ISK, zero
# decimals in ISO 4217, is a two-decimal currency at Stripe (amounts divisible by 100).
ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())


def _stripe_digits(currency: str) -> int:
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2  # every other currency, ISK included


def _iso_digits(currency: str) -> int:
    return int(get_currency_precision(currency))


def to_stripe(amount_minor: int, currency: str) -> int:
    """Roost's minor units as Stripe's ``amount``; PaymentDeclined if Stripe cannot take it."""
    currency = currency.upper()
    shift = _stripe_digits(currency) - _iso_digits(currency)
    factor: int = 10 ** abs(shift)
    if shift >= 0:
        amount = amount_minor * factor
    else:
        amount, rest = divmod(amount_minor, factor)
        if rest:
            raise PaymentDeclined(f"Stripe cannot charge {amount_minor} minor units of {currency}")
    if currency in THREE_DECIMAL and amount % 10:
        shown = Decimal(amount).scaleb(-3)
        raise PaymentDeclined(f"Stripe takes {currency} in multiples of 0.010 only, not {shown}")
    return amount


def amount_step(currency: str) -> int:
    """The smallest amount, in Roost's minor units, Stripe moves in ``currency``."""
    currency = currency.upper()
    shift = _stripe_digits(currency) - _iso_digits(currency)
    step: int = 10**-shift if shift < 0 else 1
    return max(step, 10) if currency in THREE_DECIMAL else step


def from_stripe(amount: int, currency: str) -> int:
    """Stripe's ``amount`` in Roost's minor units."""
    currency = currency.upper()
    shift = _stripe_digits(currency) - _iso_digits(currency)
    factor: int = 10 ** abs(shift)
    if shift <= 0:
        return amount * factor
    minor, rest = divmod(amount, factor)
    if rest:
        raise ValueError(f"{amount} {currency} at Stripe is no whole minor unit of ours")
    return minor


# A PaymentIntent's status (https://docs.stripe.com/payments/paymentintents/lifecycle).
_REPORTED = {
    "requires_payment_method": Reported.WAITING,
    "requires_confirmation": Reported.WAITING,
    "requires_action": Reported.WAITING,
    "processing": Reported.WAITING,
    "requires_capture": Reported.AUTHORIZED,
    "succeeded": Reported.CAPTURED,
    "canceled": Reported.CANCELED,
}


def intent_report(intent: Mapping[str, Any]) -> ProviderReport:
    """A PaymentIntent (as retrieved, or as a webhook event's object) in Roost's words."""
    amount = from_stripe(intent["amount"], intent["currency"])
    currency = str(intent["currency"]).upper()
    status = intent.get("status")
    error = intent.get("last_payment_error")
    if status == "requires_payment_method" and error:
        # The guest's card was declined; they may try another, on a payment of its own.
        reason = error.get("message") or error.get("code") or "The card was declined."
        return ProviderReport(Reported.FAILED, amount, currency, reason=reason)
    return ProviderReport(
        _REPORTED.get(str(status), Reported.WAITING),
        amount,
        currency,
        reference=_id_of(intent.get("latest_charge")) or intent.get("id"),
    )


def account_state(account: Mapping[str, Any]) -> AccountState:
    """A Connect account (as created, or as an ``account.updated`` event's object)."""
    return AccountState(
        reference=str(account["id"]),
        details_submitted=bool(account.get("details_submitted")),
        payouts_enabled=bool(account.get("payouts_enabled")),
    )


class BadSignature(Exception):
    """A webhook delivery not signed with a secret of ours, or signed too long ago."""


def verify_signature(
    payload: bytes,
    header: str,
    secrets: Sequence[str],
    *,
    now: float,
    tolerance_seconds: int = 300,
) -> None:
    """Stripe's ``Stripe-Signature`` check (https://docs.stripe.com/webhooks#verify-manually):
    ``t=<unix>,v1=<hex>[,v1=...]``, each v1 an HMAC-SHA256 of ``f"{t}.{payload}"`` under the
    endpoint's secret. Any of ``secrets`` may have signed (one is being rolled)."""
    parts = [item.partition("=") for item in header.split(",")]
    timestamps = [value for key, _, value in parts if key.strip() == "t"]
    signatures = [value.strip().encode() for key, _, value in parts if key.strip() == "v1"]
    if len(timestamps) != 1 or not timestamps[0].strip().isdigit() or not signatures:
        raise BadSignature("The Stripe-Signature header is malformed.")
    timestamp = int(timestamps[0])
    if abs(now - timestamp) > tolerance_seconds:
        raise BadSignature("The signature's timestamp is outside the tolerance.")
    signed = str(timestamp).encode() + b"." + payload
    for secret in secrets:
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode()
        # Every signature is compared, in constant time each: no early answer to time.
        if any(hmac.compare_digest(expected, given) for given in signatures):
            return
    raise BadSignature("No signature matches a webhook secret of this endpoint.")


class StripeGateway:
    provider = "STRIPE"
    amount_step = staticmethod(amount_step)

    def __init__(
        self,
        *,
        api_key: str,
        api_base: str = stripe.DEFAULT_API_BASE,
        timeout_seconds: float = 20.0,
        max_network_retries: int = 2,
    ) -> None:
        # The SDK retries connection errors, 409s and 5xx itself, under the same idempotency key.
        self._http = stripe.HTTPXClient(timeout=timeout_seconds)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base},
            http_client=self._http,
            max_network_retries=max_network_retries,
        )

    async def create(
        self,
        *,
        amount_minor: int,
        currency: str,
        description: str,
        idempotency_key: str,
        capture: CaptureMethod,
        metadata: Mapping[str, str],
    ) -> PaymentIntent:
        params: Any = {
            "amount": to_stripe(amount_minor, currency),
            "currency": currency.lower(),
            "description": description,
            "capture_method": capture,
            "metadata": dict(metadata),
            "automatic_payment_methods": {"enabled": True},
        }
        intent = await _call(
            self._client.v1.payment_intents.create_async(
                params, options={"idempotency_key": idempotency_key}
            )
        )
        return PaymentIntent(reference=intent.id, client_secret=intent.client_secret)

    async def look_up(self, reference: str) -> ProviderReport:
        intent = await _call(self._client.v1.payment_intents.retrieve_async(reference))
        return intent_report(intent.to_dict())

    async def capture(self, reference: str, *, amount_minor: int, idempotency_key: str) -> str:
        """Captures what the intent holds: Roost captures the whole authorized amount."""
        intent = await _call(
            self._client.v1.payment_intents.capture_async(
                reference, options={"idempotency_key": idempotency_key}
            )
        )
        return _id_of(intent.latest_charge) or intent.id

    async def release(self, reference: str, *, idempotency_key: str) -> str:
        intent = await _call(
            self._client.v1.payment_intents.cancel_async(
                reference, options={"idempotency_key": idempotency_key}
            )
        )
        return intent.id

    async def refund(self, reference: str, *, amount_minor: int, idempotency_key: str) -> str:
        # The intent tells the currency, and so the unit of the amount.
        intent = await _call(self._client.v1.payment_intents.retrieve_async(reference))
        refund = await _call(
            self._client.v1.refunds.create_async(
                {
                    "payment_intent": reference,
                    "amount": to_stripe(amount_minor, intent.currency),
                    # Names our ledger entry, so its webhook finds it before the answer lands.
                    "metadata": {REFUND_KEY: idempotency_key},
                },
                options={"idempotency_key": idempotency_key},
            )
        )
        return _refunded(refund.to_dict())

    async def look_up_refund(self, reference: str) -> str:
        refund = await _call(self._client.v1.refunds.retrieve_async(reference))
        return _refunded(refund.to_dict())

    async def charge(
        self, reference: str, *, amount_minor: int, currency: str, idempotency_key: str
    ) -> str:
        # A PaymentIntent's card is not kept for later: charging it again needs a Customer and
        # a saved payment method (setup_future_usage), which Roost does not ask the guest for.
        raise PaymentDeclined(
            "Stripe payments cannot be charged more afterwards; cancel and book the longer stay."
        )

    # Host payouts (Connect): an Express account per host, Stripe's onboarding, transfers.

    async def create_account(
        self,
        *,
        email: str,
        country: str | None,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> str:
        params: Any = {
            "type": "express",
            "email": email,
            "capabilities": {"transfers": {"requested": True}},
            "metadata": dict(metadata),
        }
        if country:
            params["country"] = country
        account = await _call_keyed(
            self._client.v1.accounts.create_async(
                params, options={"idempotency_key": idempotency_key}
            )
        )
        return str(account.id)

    async def onboarding_link(
        self, account: str, *, refresh_url: str, return_url: str
    ) -> OnboardingLink:
        link = await _call(
            self._client.v1.account_links.create_async(
                {
                    "account": account,
                    "refresh_url": refresh_url,
                    "return_url": return_url,
                    "type": "account_onboarding",
                }
            )
        )
        return OnboardingLink(url=link.url, expires_at=datetime.fromtimestamp(link.expires_at, UTC))

    async def transfer(
        self,
        *,
        account: str,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        group: str,
        metadata: Mapping[str, str],
    ) -> str:
        params: Any = {
            "amount": to_stripe(amount_minor, currency),
            "currency": currency.lower(),
            "destination": account,
            "transfer_group": group,
            "metadata": dict(metadata),
        }
        transfer = await _call_keyed(
            self._client.v1.transfers.create_async(
                params, options={"idempotency_key": idempotency_key}
            )
        )
        return str(transfer.id)

    async def find_transfer(self, *, group: str, payout_id: str) -> str | None:
        found = await _call(
            self._client.v1.transfers.list_async({"transfer_group": group, "limit": 100})
        )
        for transfer in found.data:
            metadata = transfer.to_dict().get("metadata") or {}
            if metadata.get("payout_id") == payout_id:
                return str(transfer.id)
        return None


# The metadata key of a refund that names the ledger entry it is (its idempotency key).
REFUND_KEY = "roost_key"
# A Refund's status (https://docs.stripe.com/api/refunds/object): only ``succeeded`` has moved
# the money; ``pending`` and ``requires_action`` may still end ``failed`` or ``canceled``.
REFUND_WAITING = frozenset({"pending", "requires_action"})
REFUND_REFUSED = frozenset({"failed", "canceled"})


def _refunded(refund: Mapping[str, Any]) -> str:
    """A Refund's id once it succeeded; PaymentPending while it waits, declined once it failed."""
    status, refund_id = refund.get("status"), str(refund["id"])
    if status in REFUND_WAITING:
        raise PaymentPending(refund_id)
    if status != "succeeded":
        reason = refund.get("failure_reason") or status
        raise PaymentDeclined(f"Stripe refused the refund ({reason})")
    return refund_id


def _id_of(value: object) -> str | None:
    """An id the SDK gives as a string, or as the object when expanded."""
    if value is None or isinstance(value, str):
        return value
    found = value.get("id") if isinstance(value, Mapping) else getattr(value, "id", None)
    return found if isinstance(found, str) else None


async def _call(request: Awaitable[T]) -> T:
    """Stripe's refusals are declines; no answer, or a failure at Stripe, is unavailability
    (the operation stays REQUESTED and is asked again under the same key)."""
    try:
        return await request
    except (stripe.CardError, stripe.InvalidRequestError, stripe.IdempotencyError) as error:
        raise PaymentDeclined(error.user_message or str(error) or "Stripe declined.") from error
    except stripe.StripeError as error:
        raise ProviderUnavailable(str(error) or type(error).__name__) from error


async def _call_keyed(request: Awaitable[T]) -> T:
    """As ``_call``, for a request whose key another process may be using at the same moment
    (a worker whose lease lapsed, a host's second click): Stripe's 409 for a key in flight, or
    its idempotency error, is no refusal. The other request may yet succeed, so the caller
    asks again later under the same key."""

    async def guarded() -> T:
        try:
            return await request
        except stripe.StripeError as error:
            if error.http_status == 409 or isinstance(error, stripe.IdempotencyError):
                raise ProviderUnavailable(str(error) or "Stripe is busy with this key.") from error
            raise

    return await _call(guarded())
